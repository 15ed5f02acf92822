import sys

from spinexr.cli import main

sys.exit(main())
