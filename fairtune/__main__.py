"""`python -m fairtune ...` and `accelerate launch -m fairtune train RECIPE.yaml`."""

import sys

from fairtune.cli import main

if __name__ == "__main__":
    sys.exit(main())
