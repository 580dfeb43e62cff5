"""OpenL3 audio embeddings (Cramer et al. 2019), native torch re-implementation of the Keras model.

Network (``openl3.models._construct_mel{128,256}_audio_network``): BatchNorm on the dB mel
spectrogram ``(1, n_mels, 199)``, four conv blocks (3x3 'same' convs 64-64 / 128-128 / 256-256 /
512-``audio_embedding_layer``, BatchNorm eps 1e-3 + ReLU after every conv except the last, 2x2
max-pools after blocks 1-3), then a max-pool of ``(32, 24)`` (mel256/512-d), ``(8, 8)``
(mel256/6144-d), ``(16, 24)`` / ``(4, 8)`` (mel128) and a channels-last flatten. Module names follow
torchopenl3's ``PytorchOpenl3`` so its state dicts load directly.

Input framing (``openl3.core._preprocess_audio_batch``): mono 48 kHz (openl3 resamples with resampy
``kaiser_best``: the default :class:`AudioSpec` here), ``center=True`` prepends 24000 zeros, the end
is zero-padded to a whole number of hops, 1-s frames every ``hop_size`` seconds.

Two spectrogram front ends, because the two openl3 generations differ numerically:

- ``frontend="kapre_v0.3"`` (default): openl3 >= 0.4 with kapre 0.3.x, as pinned by
  stable-audio-metrics (openl3 0.4.2, kapre 0.3.7): ``tf.signal.stft`` (n_fft 2048, hop 242,
  periodic Hann, ``pad_end=True`` -> 199 frames), *magnitude*, librosa mel filterbank with
  ``htk=False, norm="slaney"`` applied to the magnitude, then kapre-0.1.4-style dB:
  ``10 log10(max(x, 1e-10))`` minus the per-example maximum, floored at -80 dB.
- ``frontend="kapre_v0.1.4"``: openl3 <= 0.3.1 (kapre 0.1.4; what torchopenl3 ports): 'same'
  padding (982 zeros each side), *power* spectrum, ``htk=True`` slaney-normalised mel, ``sqrt``,
  same dB step.

Because of the per-example max subtraction the front ends are invariant to input gain, so
stable-audio-metrics' peak normalisation to -1 dBFS does not change the embedding (except through
the -80 dB floor on zero padding). stable-audio-metrics' stereo mode embeds the left and right
channels separately and concatenates them (``channels=2`` here: 1024-d for 512-d embeddings;
mono input is duplicated); it also resamples with soxr to an "evaluation bandwidth" (e.g. 44.1 kHz)
before openl3's own resampy step to 48 kHz, which is not reproduced here.

Weights: torchopenl3's numpy conversion of the Keras weights,
``https://raw.githubusercontent.com/turian/openl3_numpy_weights/main/openl3_<repr>_<content>_layer_weights.npz``
(a pickled ``{layer: {"weights"|"bias"|"scale"|"mean"|"var": ndarray}}`` dict; it is read with a
restricted unpickler that only admits numpy arrays and containers -- no arbitrary code), or a torch
state dict (``.pt``/``.pth``, ``weights_only=True``) / ``.safetensors`` file with torchopenl3's keys.

Parity with the official code (``tests/embedders/test_openl3.py``): torchopenl3 1.0.1, the PyTorch
port of openl3 0.3.1 / kapre 0.1.4. Its ``PytorchOpenl3`` is built with random weights and random
BatchNorm statistics, its ``state_dict()`` (the released ``*.pth.tar`` layout, including the
``speclayer.*`` buffers, which are ignored here) is loaded through :func:`load_openl3_state` (strict),
and ``torchopenl3.get_audio_embedding`` (its framing, resampy from 44.1 kHz, its network) is compared
with ``frontend="kapre_v0.1.4"`` on fadtk's real clips: max abs difference 3.1e-6 (embeddings up to
0.34; ``benchmarks/parity_passt_openl3_mert.py``), asserted at 3e-5 relative; mel256/512 and mel128/6144. One deliberate difference: torchopenl3
calls ``librosa.filters.mel(norm=1)``, which was area ("slaney") normalisation in the librosa 0.6 that
kapre 0.1.4 used but is L1 normalisation since librosa 0.8; the comparison therefore gives
torchopenl3 the slaney matrix (what openl3 0.3 computed). With torchopenl3's matrix as installed the
embeddings differ by up to 1.2e-3 relative. The spectrogram is computed in float64: the dB floor is
80 dB below the maximum *magnitude*, under float32 rounding, so float32 implementations (torchopenl3,
and presumably the Keras original) differ by up to ~0.2-3 dB in the quietest bins; above -60 dB
ours and torchopenl3's agree to 0.003 dB. NOT checked against official code: the default
``frontend="kapre_v0.3"`` (openl3 0.4 / kapre 0.3 need TensorFlow; checked against a librosa
pipeline only), and anything with the released weights (no download here). The numpy-weights
reading assumes torchopenl3-era MMdnn names (Keras-layout kernels are transposed automatically) and
that openl3 0.3 and 0.4 share one set of trained weights.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.audio import AudioSpec
from bench.checkpoints import CheckpointSpec, renamed_argument, resolve
from bench.embedders.base import Embedder

SAMPLE_RATE = 48000
N_FFT = 2048
HOP = 242
WEIGHTS_URL = "https://raw.githubusercontent.com/turian/openl3_numpy_weights/main/{file}"
FRONTENDS = ("kapre_v0.3", "kapre_v0.1.4")
N_MELS = {"mel128": 128, "mel256": 256}
#: final max-pool size per (input_repr, embedding_size), from openl3.models.AUDIO_POOLING_SIZES
POOLING = {
    ("mel128", 512): (16, 24),
    ("mel128", 6144): (4, 8),
    ("mel256", 512): (32, 24),
    ("mel256", 6144): (8, 8),
}
CONV_CHANNELS = (64, 64, 128, 128, 256, 256, 512)


# -- filterbanks and front ends --------------------------------------------------------------------


def hz_to_mel(f: np.ndarray, htk: bool) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    mels = f / f_sp
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mels)


def mel_to_hz(m: np.ndarray, htk: bool) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(
    sr: int, n_fft: int, n_mels: int, htk: bool, fmin: float = 0.0, fmax: float | None = None, dtype=np.float32
):
    """``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=htk, norm="slaney")`` -> ``(n_mels, 1 + n_fft // 2)``.

    kapre 0.1.4 called librosa 0.6 with ``norm=1``, which meant this area ("slaney") normalisation.
    """
    fmax = sr / 2 if fmax is None else fmax
    fftfreqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(dtype)


def kapre_decibel(x: torch.Tensor, amin: float = 1e-10, dynamic_range: float = 80.0) -> torch.Tensor:
    """kapre 0.1.4 ``amplitude_to_decibel``: ``10 log10(max(x, amin))`` - per-example max, >= -80 dB."""
    log_spec = 10.0 * torch.log10(torch.clamp(x, min=amin))
    dims = tuple(range(1, x.ndim))
    return torch.clamp(log_spec - torch.amax(log_spec, dim=dims, keepdim=True), min=-dynamic_range)


class OpenL3Spectrogram(nn.Module):
    """1-s 48 kHz frames ``(B, 48000)`` -> dB mel spectrogram ``(B, 1, n_mels, 199)`` (see module docstring)."""

    def __init__(self, n_mels: int = 256, frontend: str = "kapre_v0.3"):
        super().__init__()
        if frontend not in FRONTENDS:
            raise ValueError(f"frontend must be one of {FRONTENDS}, got {frontend!r}")
        self.frontend = frontend
        htk = frontend == "kapre_v0.1.4"
        basis = mel_filterbank(SAMPLE_RATE, N_FFT, n_mels, htk, dtype=np.float64)
        self.register_buffer("mel_basis", torch.from_numpy(basis))  # float64, see forward()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True, dtype=torch.float64))

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        if self.frontend == "kapre_v0.3":  # tf.signal.stft(pad_end=True): ceil(n / hop) frames
            n_frames = -(-n // HOP)
            return F.pad(x, (0, (n_frames - 1) * HOP + N_FFT - n))
        # kapre 0.1.4 / Keras 'same' conv padding (torchopenl3 CustomMelSTFT.custom_pad)
        total = max(N_FFT - (n % HOP), 0) if n % HOP else max(N_FFT - HOP, 0)
        return F.pad(x, (total // 2, total - total // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float64 internally (window, FFT, mel, dB): the dB floor is 80 dB below the maximum *magnitude*
        (1e-16 in power), beneath float32 rounding of the spectrum, so a float32 front end is off by up
        to ~3 dB in the quietest bins (measured on fadtk's clips); output in the input's dtype."""
        basis = self.mel_basis
        spec = torch.stft(self.pad(x).double(), N_FFT, hop_length=HOP, window=self.window, center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (B, 1025, T)
        if self.frontend == "kapre_v0.3":
            mel = torch.matmul(basis, power.sqrt())
        else:
            mel = torch.matmul(basis, power).sqrt()
        return kapre_decibel(mel).to(x.dtype).unsqueeze(1)


# -- network --------------------------------------------------------------------------------------


class OpenL3Net(nn.Module):
    """OpenL3 audio CNN on ``(B, 1, n_mels, 199)`` -> ``(B, embedding_size)`` (Keras channels-last flatten)."""

    def __init__(self, input_repr: str = "mel256", embedding_size: int = 512):
        super().__init__()
        if (input_repr, embedding_size) not in POOLING:
            raise ValueError(f"unsupported input_repr/embedding_size {input_repr}/{embedding_size}; choose {POOLING}")
        self.pool = POOLING[(input_repr, embedding_size)]
        self.batch_normalization_1 = nn.BatchNorm2d(1, eps=1e-3)
        c_in = 1
        for i, c in enumerate(CONV_CHANNELS, start=1):
            setattr(self, f"conv2d_{i}", nn.Conv2d(c_in, c, 3, padding=1))  # Keras 'same' for 3x3 / stride 1
            setattr(self, f"batch_normalization_{i + 1}", nn.BatchNorm2d(c, eps=1e-3))
            c_in = c
        self.audio_embedding_layer = nn.Conv2d(512, 512, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.batch_normalization_1(x.contiguous(memory_format=torch.channels_last))
        for i in range(1, len(CONV_CHANNELS) + 1):
            conv, bn = getattr(self, f"conv2d_{i}"), getattr(self, f"batch_normalization_{i + 1}")
            x = F.relu(bn(conv(x)))
            if i in (2, 4, 6):
                x = F.max_pool2d(x, 2, 2)
        x = F.max_pool2d(self.audio_embedding_layer(x), self.pool, self.pool)
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


# -- framing --------------------------------------------------------------------------------------


def openl3_frames(audio: np.ndarray, hop_size: float, center: bool = True) -> np.ndarray:
    """``openl3.core._preprocess_audio_batch`` framing of mono 48 kHz audio -> ``(n_frames, 48000)``."""
    frame_len, hop_len = SAMPLE_RATE, int(hop_size * SAMPLE_RATE)
    x = np.asarray(audio, dtype=np.float32)
    if center:
        x = np.pad(x, (frame_len // 2, 0))
    n = len(x)
    pad = frame_len - n if n < frame_len else int(np.ceil((n - frame_len) / float(hop_len))) * hop_len - (n - frame_len)
    if pad > 0:
        x = np.pad(x, (0, pad))
    n_frames = 1 + int((len(x) - frame_len) / float(hop_len))
    idx = np.arange(n_frames)[:, None] * hop_len + np.arange(frame_len)[None, :]
    return x[idx]


# -- weights --------------------------------------------------------------------------------------

#: the only globals a numpy-weights pickle may reference
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array reconstruction helpers (no code execution)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")
        for mod in (module, module.replace("numpy._core", "numpy.core"), module.replace("numpy.core", "numpy._core")):
            try:
                return getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"cannot resolve {module}.{name}")


def load_pickled_numpy(path: str | Path) -> Any:
    """Read a ``.npy`` (object dtype) or raw pickle holding numpy arrays, without running code.

    A 0-d object array (``np.save(dict)``) is unwrapped to its item.
    """
    with open(path, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            fh.seek(0)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            if not dtype.hasobject:
                count = int(np.prod(shape))
                arr = np.frombuffer(fh.read(count * dtype.itemsize), dtype=dtype, count=count)
                return arr.reshape(shape, order="F" if fortran else "C")
            obj = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
        else:
            fh.seek(0)
            obj = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    return obj


def state_from_layer_dict(layers: dict[str, dict[str, np.ndarray]], model: OpenL3Net) -> dict[str, torch.Tensor]:
    """torchopenl3 numpy layer dict -> :class:`OpenL3Net` state dict (Keras kernels transposed if needed)."""
    names = {"scale": "weight", "gamma": "weight", "bias": "bias", "beta": "bias", "mean": "running_mean"}
    names |= {"moving_mean": "running_mean", "var": "running_var", "moving_variance": "running_var"}
    names |= {"weights": "weight", "weight": "weight", "kernel": "weight"}
    target = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for layer, params in layers.items():
        layer = layer.decode() if isinstance(layer, bytes) else layer
        for pname, value in params.items():
            pname = pname.decode() if isinstance(pname, bytes) else pname
            key = f"{layer}.{names.get(pname, pname)}"
            if key not in target:
                continue
            arr = np.asarray(value, dtype=np.float32)
            want = tuple(target[key].shape)
            if arr.ndim == 4 and arr.shape != want and arr.transpose(3, 2, 0, 1).shape == want:
                arr = arr.transpose(3, 2, 0, 1)  # Keras (kh, kw, in, out) -> torch (out, in, kh, kw)
            state[key] = torch.from_numpy(np.ascontiguousarray(arr.reshape(want)))
    for key, val in target.items():  # num_batches_tracked is not in Keras weights
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, val)
    return state


def load_openl3_state(path: Path, model: OpenL3Net) -> dict[str, torch.Tensor]:
    """State dict for :class:`OpenL3Net` from torchopenl3 numpy weights, a torch file or safetensors."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    elif path.suffix in (".pt", ".pth", ".bin", ".tar"):  # torchopenl3 releases ``*.pth.tar`` state dicts
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(state.get("state_dict"), Mapping):
            state = state["state_dict"]
    else:
        return state_from_layer_dict(load_pickled_numpy(path), model)
    return {k: v for k, v in state.items() if not k.startswith("speclayer.")}


# -- embedder -------------------------------------------------------------------------------------


class OpenL3Embedder(Embedder):
    """OpenL3 frame embeddings ``(T, D)`` (1-s windows every ``hop_size`` s).

    Args:
        content_type: "music" or "env".
        input_repr: "mel256" (stable-audio-metrics) or "mel128".
        embedding_size: 512 or 6144.
        hop_size: seconds between windows (stable-audio-metrics: 0.5; openl3 default 0.1).
        center: prepend half a window of zeros (openl3 default).
        frontend: "kapre_v0.3" (openl3 >= 0.4) or "kapre_v0.1.4" (openl3 <= 0.3.1, torchopenl3).
        channels: 1 (mono) or 2 (per-channel embeddings concatenated, stable-audio-metrics stereo).
        checkpoint: local weights file (see module docstring).
    """

    name = "openl3"
    default_audio = AudioSpec(sample_rate=SAMPLE_RATE, resampler="kaiser_best_polyphase")

    param_aliases = {"checkpoint": "weights_sha256", "weights_path": "weights_sha256"}

    def __init__(
        self,
        content_type: str = "music",
        input_repr: str = "mel256",
        embedding_size: int = 512,
        hop_size: float = 0.5,
        center: bool = True,
        frontend: str = "kapre_v0.3",
        channels: int = 1,
        checkpoint: str | None = None,
        audio: AudioSpec | dict | None = None,
        device: str = "auto",
        batch_size: int = 32,
        weights_path: str | None = None,  # deprecated alias of checkpoint
    ):
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        if channels == 2 and (audio is None or (isinstance(audio, Mapping) and "mono" not in audio)):
            audio = {**(audio or {}), "mono": "none"}  # keep both channels
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        if content_type not in ("music", "env"):
            raise ValueError(f"content_type must be 'music' or 'env', got {content_type!r}")
        if input_repr not in N_MELS:
            raise ValueError(f"input_repr must be one of {sorted(N_MELS)}, got {input_repr!r}")
        if hop_size <= 0:
            raise ValueError(f"hop_size must be positive, got {hop_size}")
        self.require_rate(SAMPLE_RATE, "OpenL3")
        self.content_type, self.input_repr, self.embedding_size = content_type, input_repr, int(embedding_size)
        self.hop_size, self.center, self.frontend, self.channels = float(hop_size), bool(center), frontend, channels
        self.spectrogram = OpenL3Spectrogram(N_MELS[input_repr], frontend)
        self.net = OpenL3Net(input_repr, self.embedding_size)
        filename = f"openl3_{input_repr}_{content_type}_layer_weights.npz"
        self.spec = CheckpointSpec(
            filename=filename,
            url=WEIGHTS_URL.format(file=filename),
            env_var="GENAUDIO_BENCH_OPENL3_WEIGHTS",
            config_key="embedder.openl3.checkpoint",
        )
        checkpoint = renamed_argument(checkpoint, weights_path, "weights_path", "embedder.openl3")
        self.weights, self.weights_sha256 = resolve(self.spec, checkpoint)
        self.net.load_state_dict(load_openl3_state(self.weights, self.net), strict=True)
        self.net.eval().to(self.device, memory_format=torch.channels_last)
        self.spectrogram.to(self.device)

    def derived_params(self) -> dict[str, Any]:
        # spectrogram_dtype: float64 since issue #12 (float32 before); keys caches apart
        return {"spectrogram_dtype": "float64", "weights_sha256": self.weights_sha256}

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {"openl3": {"path": str(self.weights), "sha256": self.weights_sha256}}

    def forward(self, frames: np.ndarray) -> np.ndarray:
        """``(N, 48000)`` frames -> ``(N, embedding_size)``, ``batch_size`` frames per pass."""
        out = []
        with torch.inference_mode():
            for k in range(0, len(frames), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(frames[k : k + self.batch_size], dtype=np.float32))
                out.append(self.net(self.spectrogram(x.to(self.device))).float().cpu().numpy())
        return np.concatenate(out, axis=0)

    def _channels(self, wav: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(wav, dtype=np.float32)
        if x.ndim == 2 and x.shape[0] < x.shape[1] and x.shape[0] <= 8:
            x = x.T  # (channels, samples) -> (samples, channels)
        if self.channels == 1:
            return [x.mean(axis=1) if x.ndim == 2 else x]
        if x.ndim == 1 or x.shape[1] == 1:
            mono = x.reshape(-1)
            return [mono, mono]
        return [x[:, 0], x[:, 1]]

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs) -> list[dict[str, np.ndarray]]:
        """Frames of all clips and channels go through the network together (all frames are 1 s)."""
        per_clip = [[openl3_frames(c, self.hop_size, self.center) for c in self._channels(w)] for w in wavs]
        flat = [f for clip in per_clip for f in clip]
        emb = self.forward(np.concatenate(flat, axis=0))
        out, start = [], 0
        for clip in per_clip:
            chans = []
            for frames in clip:
                chans.append(emb[start : start + len(frames)])
                start += len(frames)
            out.append({"emb": np.concatenate(chans, axis=1).astype(np.float32)})
        return out
