"""kind's default storage manifest (the local-path provisioner), from the kind module's source, with its images
replaced by the ones the offline node image carries.

    python3 storage_manifest.py KIND_MODULE_DIR PROVISIONER_IMAGE HELPER_IMAGE > default-storage.yaml
"""

import re
import sys
from pathlib import Path

module, provisioner, helper = sys.argv[1:4]
source = (Path(module) / "pkg/build/nodeimage/const_storage.go").read_text()
images = dict(re.findall(r"const (storage\w+Image) = \"([^\"]+)\"", source))
start = source.find("const defaultStorageManifest = `")
if start < 0 or set(images) != {"storageProvisionerImage", "storageHelperImage"}:
    sys.exit("kind's const_storage.go has changed: update storage_manifest.py")
# A Go raw string joined with the image constants: `...` + storageProvisionerImage + `...`
rest = source[start + len("const defaultStorageManifest = `") :]
text, names = "", {"storageProvisionerImage": provisioner, "storageHelperImage": helper}
while True:
    piece, _, rest = rest.partition("`")
    text += piece
    joined = re.match(r" \+ (\w+) \+ `", rest)
    if not joined:
        break
    text += names[joined.group(1)]
    rest = rest[joined.end() :]
sys.stdout.write(text)
