"""An external client no one here wrote: Python grpcio against `vane stack`.

Checks health for every service, reflection across the stack, and a call to GetServiceInfo
built only from the descriptors reflection returns (no generated Python code).
Run with: python3 -m pytest Tests/External (the vane binary: $VANE_BIN or .build/debug/vane).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import urllib.error
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VANE = os.environ.get("VANE_BIN", os.path.join(ROOT, ".build", "debug", "vane"))
SERVICES = [
    ("feature", "vane.v1.FeatureService"),
    ("trainer", "vane.v1.TrainerService"),
    ("predictor", "vane.v1.PredictorService"),
    ("gatekeeper", "vane.v1.GatekeeperService"),
    ("deploy", "vane.v1.DeployService"),
]


def _free_base_port(count=5):
    # Below the kernel's ephemeral range, so no outgoing connection takes one meanwhile.
    for _ in range(200):
        base = random.randint(20000, 32000 - count)
        try:
            sockets = []
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def stack():
    base = _free_base_port(15)
    data = tempfile.mkdtemp(prefix="vane-external-")
    process = subprocess.Popen(
        [VANE, "stack", "--base-port", str(base), "--data-dir", data, "--grace-period", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    deadline = time.time() + 90
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "SERVING; Ctrl-C" in line:
            break
    assert any("SERVING; Ctrl-C" in l for l in lines), f"vane stack did not start: {lines}"
    addresses = {name: f"127.0.0.1:{base + i}" for i, (_, name) in enumerate(SERVICES)}
    # The Prometheus endpoints, at the gRPC ports + 10.
    addresses.update({kind: f"127.0.0.1:{base + 10 + i}" for i, (kind, _) in enumerate(SERVICES)})
    try:
        yield addresses
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.parametrize("kind,name", SERVICES)
def test_health_serving(stack, kind, name):
    with grpc.insecure_channel(stack[name]) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        overall = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert overall.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("kind,name", SERVICES)
def test_health_unknown_service_is_not_found(stack, kind, name):
    with grpc.insecure_channel(stack[name]) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            stub.Check(health_pb2.HealthCheckRequest(service="vane.v1.NoSuchService"), timeout=5)
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND


def _list_services(address):
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        return {s.name for r in responses for s in r.list_services_response.service}


def test_reflection_lists_all_five_services_plus_health_and_reflection(stack):
    listed = set()
    for _, name in SERVICES:
        services = _list_services(stack[name])
        assert name in services
        assert "grpc.health.v1.Health" in services
        assert "grpc.reflection.v1alpha.ServerReflection" in services
        listed |= services
    assert {name for _, name in SERVICES} <= listed


@pytest.mark.parametrize("kind,name", SERVICES)
def test_reflection_describes_methods_and_a_reflected_call_works(stack, kind, name):
    with grpc.insecure_channel(stack[name]) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName(name)
        methods = {m.name: m for m in service.methods}
        assert "GetServiceInfo" in methods
        method = methods["GetServiceInfo"]
        assert method.input_type.full_name == "vane.v1.GetServiceInfoRequest"
        assert method.output_type.full_name == "vane.v1.ServiceInfo"
        # Streaming shapes come through reflection too.
        if name == "vane.v1.FeatureService":
            assert methods["IngestCandles"].client_streaming
            assert methods["BuildDataset"].server_streaming

        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            f"/{name}/GetServiceInfo",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        info = call(request_class(), timeout=5)
        assert info.service == name
        assert info.listen_address == stack[name]
        assert any(m.name == "GetServiceInfo" and m.implemented for m in info.methods)


@pytest.mark.parametrize("kind,name", SERVICES)
def test_metrics_parse_with_prometheus_client_and_count_calls(stack, kind, name):
    """Prometheus' own Python parser reads each /metrics; a call shows up in its counters."""
    method = f"{name}/GetServiceInfo"
    with grpc.insecure_channel(stack[name]) as channel:
        call = channel.unary_unary(f"/{method}", request_serializer=lambda m: m, response_deserializer=lambda m: m)
        assert len(call(b"", timeout=10)) > 0

    with urllib.request.urlopen(f"http://{stack[kind]}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    build = families["vane_build_info"].samples
    assert [s.labels["service"] for s in build] == [kind]
    requests = [s for s in families["vane_rpc_requests"].samples if s.labels.get("method") == method]
    assert requests and requests[0].value >= 1
    assert families["vane_rpc_duration_seconds"].type == "histogram"
    buckets = [s for s in families["vane_rpc_duration_seconds"].samples if s.name.endswith("_bucket") and s.labels["method"] == method]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value >= 1

    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://{stack[kind]}/nothing", timeout=10)
    assert missing.value.code == 404
