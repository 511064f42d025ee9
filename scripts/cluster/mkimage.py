#!/usr/bin/env python3
"""Make a single-layer image tarball (docker-archive format, importable with
`ctr -n k8s.io images import` or `docker load`) from local files, no registry needed.

usage: mkimage.py OUT.tar NAME:TAG --file SRC:DEST[:MODE] ... [--entrypoint JSONLIST]
       [--cmd JSONLIST] [--user UID] [--port 8080]
"""
import argparse, hashlib, io, json, tarfile, time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("ref")
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--entrypoint", default=None)
    ap.add_argument("--cmd", default=None)
    ap.add_argument("--user", default="")
    ap.add_argument("--port", action="append", default=[])
    a = ap.parse_args()

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        dirs = set()
        for spec in a.file:
            parts = spec.split(":")
            src, dest = parts[0], parts[1].lstrip("/")
            mode = int(parts[2], 8) if len(parts) > 2 else 0o755
            p = ""
            for comp in dest.split("/")[:-1]:
                p = f"{p}/{comp}" if p else comp
                if p not in dirs:
                    ti = tarfile.TarInfo(p); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 0
                    t.addfile(ti); dirs.add(p)
            data = open(src, "rb").read()
            ti = tarfile.TarInfo(dest); ti.size = len(data); ti.mode = mode; ti.mtime = 0
            t.addfile(ti, io.BytesIO(data))
        ti = tarfile.TarInfo("tmp"); ti.type = tarfile.DIRTYPE; ti.mode = 0o1777; ti.mtime = 0
        t.addfile(ti)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()

    cfg = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if a.entrypoint: cfg["Entrypoint"] = json.loads(a.entrypoint)
    if a.cmd: cfg["Cmd"] = json.loads(a.cmd)
    if a.user: cfg["User"] = a.user
    if a.port: cfg["ExposedPorts"] = {f"{p}/tcp": {} for p in a.port}
    config = {
        "architecture": "amd64", "os": "linux",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(0)),
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "ai-trading scripts/cluster/mkimage.py"}],
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id[7:] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [a.ref], "Layers": [layer_name]}]

    with tarfile.open(a.out, "w") as out:
        for name, data in ((config_name, config_bytes), (layer_name, layer_bytes),
                           ("manifest.json", json.dumps(manifest).encode())):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 0
            out.addfile(ti, io.BytesIO(data))
    print(f"wrote {a.out} ({a.ref}, config {config_name[:12]})")


if __name__ == "__main__":
    main()
