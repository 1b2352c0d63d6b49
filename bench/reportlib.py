"""What the bench report scripts share: reading a results directory's meta.txt and TSV
files, and formatting numbers for the markdown tables ("—" where a value is missing)."""
import csv
import statistics


def read_meta(d):
    """meta.txt (key=value lines) of results directory `d` as a dict."""
    meta = {}
    for line in (d / "meta.txt").read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            meta[k] = v
    return meta


def read_tsv(path):
    """The rows of a tab-separated file with a header line; [] when it does not exist."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def median(vals):
    """The median of the values that are not None, or None."""
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    return "—" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"
