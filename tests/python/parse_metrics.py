"""Parses OpenMetrics text from stdin with the Prometheus project's own parser
(prometheus_client.openmetrics.parser, pinned by the tests) and prints every sample as JSON:
[{"family", "type", "name", "labels", "value"}]. A text the parser refuses exits non-zero."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        samples.append(
            {
                "family": family.name,
                "type": family.type,
                "name": sample.name,
                "labels": sample.labels,
                "value": sample.value,
            }
        )
json.dump(samples, sys.stdout)
