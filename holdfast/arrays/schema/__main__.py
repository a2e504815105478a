"""Regenerate holdfast.schema.json from holdfast.linkml.yaml (needs LinkML installed)."""

from holdfast.arrays.schema import JSON_SCHEMA_FILE, generate_json_schema, schema_dir

if __name__ == "__main__":
    target = schema_dir() / JSON_SCHEMA_FILE
    target.write_text(generate_json_schema())
    print(f"wrote {target}")
