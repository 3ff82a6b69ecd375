import sys

from ganinterface.launcher import main

sys.exit(main())
