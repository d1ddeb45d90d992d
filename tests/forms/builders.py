"""Small builders for form-js definitions used across the forms tests."""


def make_form(*components, **root):
    """A minimal valid form-js definition around the given components."""
    form = {"type": "default", "id": "test_form", "schemaVersion": 16, "components": list(components)}
    form.update(root)
    return form


def number(key, label=None, required=False, **properties):
    component = {"type": "number", "key": key, "label": label or key}
    if required:
        component["validate"] = {"required": True}
    if properties:
        component["properties"] = {name: str(value) for name, value in properties.items()}
    return component
