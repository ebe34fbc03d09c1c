"""Python protobuf modules generated from proto/ at test time.

protoc --python_out writes agent_pb2, oci_pb2, ... into a private directory;
load() imports them and returns a namespace with one attribute per package
plus RESPONSES: method name -> response class, read from the service
descriptors so the table cannot drift from the .proto files.
"""
import importlib
import os
import subprocess
import sys
import types

from google.protobuf import symbol_database

from husktest import TOP

PROTO_DIR = os.path.join(TOP, "proto")
NAMES = ["ttrpc", "health", "types", "oci", "agent"]


def generate(outdir):
    files = [os.path.join(PROTO_DIR, f"{n}.proto") for n in NAMES]
    subprocess.run(["protoc", f"--python_out={outdir}", f"-I{PROTO_DIR}", *files],
                   check=True)


def load(outdir):
    generate(outdir)
    sys.path.insert(0, outdir)
    ns = types.SimpleNamespace()
    for name in NAMES:
        setattr(ns, name, importlib.import_module(f"{name}_pb2"))
    ns.RESPONSES = {}
    for mod in (ns.agent, ns.health):
        for service in mod.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                ns.RESPONSES[m.name] = _message_class(ns, m.output_type)
    return ns


def _message_class(ns, descriptor):
    return symbol_database.Default().GetSymbol(descriptor.full_name)
