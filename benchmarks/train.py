"""Training tokens/s on CPU for the local trainer config (see omni/bench.py)."""
from omni.bench import main

if __name__ == "__main__":
    main()
