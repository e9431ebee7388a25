#!/usr/bin/env bash
# Remake the viewer's pictures in docs/img/: the GIF (headless export of a recorded match) and
# screenshots of the real window under Xvfb (apt-get install -y xvfb imagemagick x11-utils xdotool).
# Run from the repository root: bash docs/make_viewer_media.sh
set -euo pipefail
export PYTHONPATH=.
unset SDL_VIDEODRIVER
out=docs/img
work=$(mktemp -d)
mkdir -p "$out"
cli() { python -m fpx_arena "$@"; }

# the same scripted expert at 0 ms and at 150 ms decision latency (reproducible: profile clock)
cli play fighter -a p0=fighter/reactive -a p1=fighter/reactive --clock profile \
    --latency p0=0 --latency p1=150 --seed 3 --record "$work/fighter.replay" > /dev/null
cli render "$work/fighter.replay" --out "$out/viewer-fighter.gif" --end 8 --fps 20 --scale 0.6 --quiet
# four traders: two informed at 0 and 200 ms, a market maker at 50 ms, momentum at 100 ms
cli play market -a t0=market/informed -a t1=market/informed -a t2=market/marketmaker \
    -a t3=market/momentum --env n_agents=4 --clock profile --latency t0=0 --latency t1=200 \
    --latency t2=50 --latency t3=100 --seed 2 --record "$work/market.replay" > /dev/null

Xvfb :77 -screen 0 1280x800x24 > /dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2> /dev/null; rm -rf "$work"' EXIT
export DISPLAY=:77
sleep 1
grab() {  # grab TITLE FILE SECONDS COMMAND...: run the viewer, wait, grab its window, close it
    local title=$1 file=$2 wait=$3
    shift 3
    "$@" > /dev/null 2>&1 &
    local pid=$!
    sleep "$wait"
    import -window "$title" "$file"
    kill "$pid"
    wait "$pid" 2> /dev/null || true
}
grab "fpx-arena replay: fighter" "$out/viewer-fighter-window.png" 4 \
    cli watch "$work/fighter.replay" --start 2.6 --paused --hitboxes
grab "fpx-arena replay: market" "$out/viewer-market-window.png" 4 \
    cli watch "$work/market.replay" --start 18.25 --paused
# a person (keys sent by xdotool) against the zoner bot, live on the wall clock
cli play fighter -a p0=human -a p1=fighter/zoner --watch --clock wall --seed 4 > /dev/null 2>&1 &
pid=$!
sleep 2.5
xdotool search --name "fpx-arena: fighter" windowactivate --sync 2> /dev/null || true
xdotool keydown d; sleep 0.8; xdotool keyup d
xdotool key w; sleep 0.9; xdotool key j; sleep 0.08
import -window "fpx-arena: fighter" "$out/viewer-fighter-live-human.png"
kill "$pid"
ls -la "$out"
