"""The holdfast.yaml schema: its LinkML source and the JSON Schema generated from it.

LinkML is a development tool here, not a runtime dependency: the generated JSON Schema is
committed and shipped, and validation at run time uses only `jsonschema`. After editing
`holdfast.linkml.yaml`, regenerate with either of

    python -m holdfast.arrays.schema
    gen-json-schema --no-include-null holdfast/arrays/schema/holdfast.linkml.yaml \\
        > holdfast/arrays/schema/holdfast.schema.json
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

LINKML_FILE = "holdfast.linkml.yaml"
JSON_SCHEMA_FILE = "holdfast.schema.json"
# Optional fields must be absent rather than null, so the typed API never sees None
# where the schema promises a value.
GENERATOR_ARGS = ("--no-include-null",)


class LinkMLUnavailable(Exception):
    """Neither the linkml package nor the gen-json-schema command is installed."""


def schema_dir() -> Path:
    return Path(str(resources.files(__name__)))


def generate_json_schema() -> str:
    """The JSON Schema text LinkML generates from the LinkML file, as committed."""
    source = schema_dir() / LINKML_FILE
    try:
        from linkml.generators.jsonschemagen import JsonSchemaGenerator
    except ImportError:
        command = shutil.which("gen-json-schema")
        if command is None:
            raise LinkMLUnavailable(
                "install LinkML (pip install linkml) to regenerate the JSON Schema"
            ) from None
        completed = subprocess.run(  # noqa: S603 - a fixed local tool and our own file
            [command, *GENERATOR_ARGS, str(source)],
            check=True,
            capture_output=True,
            text=True,
        )
        return completed.stdout
    text: str = JsonSchemaGenerator(str(source), include_null=False).serialize()
    return text if text.endswith("\n") else text + "\n"
