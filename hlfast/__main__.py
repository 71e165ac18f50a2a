import sys

from hlfast.cli import main

sys.exit(main())
