"""Reading SASS for the kernel benches: the main loop's instructions."""
import re


def loop_body(sass: str) -> list:
    """The longest backward-branch body (the main loop)."""
    ins = [(int(m.group(1), 16), m.group(2)) for m in re.finditer(r"/\*([0-9a-f]{4,5})\*/\s+([^;]*);", sass)]
    best = []
    for a, txt in ins:
        if "BRA" in txt:
            t = re.search(r"0x([0-9a-f]+)", txt)
            if t and int(t.group(1), 16) < a:
                body = [x for b, x in ins if int(t.group(1), 16) <= b <= a]
                best = body if len(body) > len(best) else best
    return best
