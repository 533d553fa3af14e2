import sys

from musingly_pipeline.cli import main

sys.exit(main())
