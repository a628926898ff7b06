import sys

from cautionflow.cli import main

sys.exit(main())
