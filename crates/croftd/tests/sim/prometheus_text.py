"""Parse a Prometheus text exposition on stdin with the Prometheus client's
own parser (Debian's python3-prometheus-client) and print its families as
JSON: {"name": {"type": ..., "samples": [[sample name, labels, value]]}}.
A text the parser refuses exits non-zero with its complaint. Used by the
tests of GET /metrics."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
try:
    for family in text_string_to_metric_families(sys.stdin.read()):
        if family.name in families:
            sys.exit(f"family {family.name} appears twice")
        families[family.name] = {
            "type": family.type,
            "samples": [
                [s.name, s.labels, None if math.isnan(s.value) else s.value]
                for s in family.samples
            ],
        }
except ValueError as e:
    sys.exit(f"not the Prometheus text format: {e}")
json.dump(families, sys.stdout)
