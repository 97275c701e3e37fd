"""Provider planning: CPU-only hosts get the CPU quietly; explicit GPU asks say why not."""

from __future__ import annotations

import pytest

from modelyard_runtime.session.providers import CPU, CUDA, TENSORRT, plan_providers

ALL = (TENSORRT, CUDA, CPU)


def test_cpu_is_cpu_only() -> None:
    assert plan_providers("cpu", gpu=True, available=ALL).providers == (CPU,)


def test_auto_without_gpu_picks_cpu_without_a_note() -> None:
    plan = plan_providers("auto", gpu=False, available=ALL)
    assert plan.providers == (CPU,)
    assert plan.note == ""


def test_auto_with_gpu_uses_cuda_then_cpu() -> None:
    assert plan_providers("auto", gpu=True, available=ALL).providers == (CUDA, CPU)


def test_tensorrt_chain_falls_back_through_cuda() -> None:
    assert plan_providers("tensorrt", gpu=True, available=ALL).providers == (TENSORRT, CUDA, CPU)


@pytest.mark.parametrize("requested", ["cuda", "tensorrt"])
def test_explicit_gpu_without_gpu_explains(requested: str) -> None:
    plan = plan_providers(requested, gpu=False, available=ALL)
    assert plan.providers == (CPU,)
    assert "no NVIDIA GPU" in plan.note


def test_explicit_gpu_with_a_cpu_only_build_explains() -> None:
    plan = plan_providers("cuda", gpu=True, available=(CPU,))
    assert plan.providers == (CPU,)
    assert CUDA in plan.note


def test_with_options_passes_cuda_and_tensorrt_options() -> None:
    chain = plan_providers("tensorrt", gpu=True, available=ALL).with_options("/cache")
    assert chain[0] == (
        TENSORRT,
        {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": "/cache",
            "trt_timing_cache_enable": True,
        },
    )
    assert isinstance(chain[1], tuple)
    assert chain[1][0] == CUDA
    assert chain[1][1]["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    assert chain[2] == CPU


def test_no_tensorrt_cache_without_a_directory() -> None:
    """A model decrypted in memory: its engines (its weights, compiled) never reach a disk."""
    chain = plan_providers("tensorrt", gpu=True, available=ALL).with_options("")
    assert chain[0] == (
        "TensorrtExecutionProvider",
        {"trt_engine_cache_enable": False, "trt_timing_cache_enable": False},
    )
