#!/bin/sh
# Rebuild the prompts in this directory. Needs Debian's espeak-ng and sox:
#   apt-get install -y --no-install-recommends espeak-ng sox
# Each prompt is spoken by espeak-ng (voice en-us, 150 words/min), converted by sox to 16-bit mono
# WAV at 8 kHz and 16 kHz, and padded with silence or trimmed to an exact length, so that tests
# can count packets (a 3.0 s prompt is 150 RTP packets at 20 ms).
set -eu
cd "$(dirname "$0")"
make() { # name seconds text
    espeak-ng -v en-us -s 150 -w "/tmp/rms-$1.wav" "$3"
    for rate in 8000 16000; do
        sox "/tmp/rms-$1.wav" -r "$rate" -c 1 -b 16 "$1-$((rate / 1000))k.wav" pad 0 "$2" trim 0 "$2"
    done
    rm -f "/tmp/rms-$1.wav"
}
make welcome 3.0 "Welcome to r m s. This call is answered by a Lua script."
make goodbye 1.5 "Goodbye."
