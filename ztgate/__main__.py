import sys

from ztgate.cli import main

sys.exit(main())
