"""`python -m services.cli`: the same as the installed `arcserve`."""
from services.cli.app import main

if __name__ == "__main__":
    main()
