import sys

from netsim.app.cli import main

sys.exit(main())
