import sys

from eu.cli import main

sys.exit(main())
