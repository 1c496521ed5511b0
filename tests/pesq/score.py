#!/usr/bin/env python3
"""Print the ITU-T P.862 narrowband MOS-LQO of DEG against REF.

Usage: score.py REF.wav DEG.wav

Both files: 16-bit mono WAV at 8000 Hz (the Rust helper `pesq_nb` resamples with sox first).
Uses the PyPI package `pesq` (ludlows/python-pesq, the ITU reference C code), mode 'nb', whose
result is the P.862.1 mapped MOS-LQO (about 1.0 to 4.55). Runs in the venv of tests/pesq/README.md.
"""

import sys
import wave

import numpy as np
from pesq import pesq


def read(path):
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != 8000:
            sys.exit(
                f"{path}: {w.getnchannels()} channel(s), {8 * w.getsampwidth()} bits, {w.getframerate()} Hz; "
                "need 16-bit mono at 8000 Hz"
            )
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ref, deg = read(sys.argv[1]), read(sys.argv[2])
    print(f"{pesq(8000, ref, deg, 'nb'):.4f}")


if __name__ == "__main__":
    main()
