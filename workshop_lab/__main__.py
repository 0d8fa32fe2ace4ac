import sys

from workshop_lab.cli import main

sys.exit(main())
