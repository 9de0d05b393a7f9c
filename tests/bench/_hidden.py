"""Start of a script for a fresh interpreter that sees neither the editable install's import
hook nor the packages named in ``sys.argv[1]`` (a JSON list): as on the GPU machine's image."""

HIDE_MISSING = """
import importlib.abc, importlib.machinery, importlib.util, json, sys
MISSING = set(json.loads(sys.argv[1]))

class Hide(importlib.abc.MetaPathFinder):
    # the path finder, blind to the missing packages (find_spec says None, as if absent)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)

    def find_distributions(self, *args, **kwargs):
        return importlib.machinery.PathFinder.find_distributions(*args, **kwargs)

sys.meta_path[:] = [Hide() if f is importlib.machinery.PathFinder else f
                    for f in sys.meta_path if "editable" not in repr(f)]
"""
