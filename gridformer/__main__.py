"""``python -m gridformer ...`` runs the command line, e.g. under ``torchrun``::

    torchrun --nproc_per_node=2 -m gridformer train --config cfg.yaml
"""

import sys

from gridformer.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
