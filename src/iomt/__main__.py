import sys

from iomt.cli import main

sys.exit(main())
