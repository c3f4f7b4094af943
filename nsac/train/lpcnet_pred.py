"""Train the tables of the predictive LPCNet quantizer (`lpcnet-pred`, 1.47 kb/s) and ship them.

    OMP_NUM_THREADS=1 python -m nsac.train.lpcnet_pred --data runs/lpcnet-data --out nsac/codecs/lpcnet/data

Input: ``train.npz`` and ``valid.npz`` of :mod:`nsac.train.lpcnet_data` (clean features and the 1.6 kb/s
decoded ones; valid holds speakers left out of the train split). Steps, all on one CPU thread:

1. the GRU predictor (torch), open loop: inputs are the 1.6 kb/s *decoded* features (a stand-in for this
   quantizer's decoded features, whose errors are of the same size), target the clean end frame, MSE;
2. the residual tables on open-loop residuals: c0 levels (1-D LBG) and the c1..c17 stages (LBG, stage after
   stage; the shorter last stage of sub-packet 2 on the same residual as the longer one);
3. closed loop, ``--rounds`` times: encode the whole training set with the current tables as the encoder will
   (all files in lockstep, the predictor fed its own decoded features; the nearest end frame rather than the
   candidate search, for speed); fine-tune the predictor on those decoded inputs, then retrain the residual
   tables on the residuals the encoder met;
4. validation: the cepstral distance of decoded vs. clean features for this quantizer and the 1.6 kb/s one,
   per frame position, and the recovery after a lost super-packet.

Writes ``lpcnet_pred_<sha8>.safetensors`` (float32) and the JSON note of the same name.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nsac.dsp.features import cepstral_distance_db
from nsac.quant import lpcnet_pred_quantizer as pq
from nsac.quant import lpcnet_quantizer as lq
from nsac.quant import vq

SILENCE_C0 = -12.0
"""End frames with c0 below this (digital silence) are left out of the VQ training."""
F = pq.FRAMES_PER_SUBPACKET


def log(message: str) -> None:
    print(f"[lpcnet_pred {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------- data

def load_files(path: Path) -> list[dict[str, np.ndarray]]:
    """Per file: clean cepstrum (n, 18), period, correlation, the 1.6 kb/s decoded cepstrum, decoded pitch."""
    with np.load(path) as arrays:
        features = arrays["features"]
        starts = arrays["file_start_frame"]
    files = []
    for a, b in itertools.pairwise(starts):
        clean = features[0, a:b].astype(np.float64)
        period = clean[:, 18] * 50.0 + 100.0
        correlation = clean[:, 19] + 0.5
        p = (b - a) // F
        fields = pq._pitch_fields(period.reshape(p, F), correlation.reshape(p, F), clean[:, 0].reshape(p, F))
        q_period, q_correlation = lq.pitch_values(fields[:, 0], fields[:, 1], fields[:, 2])
        files.append({"cepstrum": clean[:, :18], "period": period, "correlation": correlation,
                      "decoded": features[1, a:b, :18].astype(np.float64),
                      "pitch": pq.pitch_features(q_period, q_correlation)})
    return files


def predictor_arrays(file: dict[str, np.ndarray], decoded: np.ndarray) -> tuple[np.ndarray, ...]:
    """Raw inputs (P, 76), base = previous decoded end frame (P, 18), target = clean end frame (P, 18)."""
    p = decoded.shape[0] // F
    frames = decoded.reshape(p, F * pq.N_BANDS)
    previous = np.concatenate([np.zeros((1, F * pq.N_BANDS)), frames[:-1]])
    previous_pitch = np.concatenate([np.zeros((1, pq.PITCH_INPUTS)), file["pitch"][:-1]])
    x = np.concatenate([previous, previous_pitch, file["pitch"]], axis=1)
    return x, previous[:, -pq.N_BANDS:], file["cepstrum"].reshape(p, F, pq.N_BANDS)[:, -1]


# ---------------------------------------------------------------- predictor (torch)

def train_predictor(files, decoded, *, hidden: int, epochs: int, lr: float, seed: int, init=None,
                    batch_files: int = 16):
    """Fit the GRU on (inputs from `decoded`, clean end frames); returns (PredictorWeights, loss history)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    arrays = [predictor_arrays(f, d) for f, d in zip(files, decoded)]
    x_all = np.concatenate([a[0] for a in arrays])
    if init is None:
        mean = x_all.mean(axis=0)
        scale = 1.0 / np.maximum(x_all.std(axis=0), 1e-3)
    else:
        mean, scale = init.input_mean, init.input_scale
    gru = torch.nn.GRU(pq.PREDICTOR_INPUTS, hidden, batch_first=True).double()
    out = torch.nn.Linear(hidden, pq.N_BANDS).double()
    with torch.no_grad():
        if init is None:
            out.weight.mul_(0.1)
            out.bias.zero_()
        else:
            for module, names in ((gru, ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")),
                                  (out, ("weight", "bias"))):
                for name, value in zip(names, _weights_of(init, module is out)):
                    getattr(module, name).copy_(torch.from_numpy(value))
    order = np.argsort([a[0].shape[0] for a in arrays])
    batches = [order[i: i + batch_files] for i in range(0, len(order), batch_files)]

    def padded(batch):
        t = max(arrays[i][0].shape[0] for i in batch)
        x = np.zeros((len(batch), t, pq.PREDICTOR_INPUTS))
        base = np.zeros((len(batch), t, pq.N_BANDS))
        target = np.zeros_like(base)
        mask = np.zeros((len(batch), t, 1))
        for row, i in enumerate(batch):
            n = arrays[i][0].shape[0]
            x[row, :n] = (arrays[i][0] - mean) * scale
            base[row, :n], target[row, :n], mask[row, :n] = arrays[i][1], arrays[i][2], 1.0
        return [torch.from_numpy(v) for v in (x, base, target, mask)]

    tensors = [padded(b) for b in batches]
    parameters = list(gru.parameters()) + list(out.parameters())
    optimizer = torch.optim.Adam(parameters, lr=lr)
    steps = epochs * len(tensors)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + np.cos(np.pi * s / steps)))
    history = []
    for epoch in range(epochs):
        total, count = 0.0, 0.0
        for b in rng.permutation(len(tensors)):
            x, base, target, mask = tensors[b]
            prediction = base + out(gru(x)[0])
            loss = (((prediction - target) ** 2) * mask).sum() / (mask.sum() * pq.N_BANDS)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * float(mask.sum())
            count += float(mask.sum())
        history.append(total / count)
        log(f"predictor epoch {epoch + 1}/{epochs}: MSE per coefficient {history[-1]:.4f}")
    weights = pq.PredictorWeights(
        mean, scale, *(p.detach().numpy().astype(np.float32).astype(np.float64)
                       for p in (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0,
                                 out.weight, out.bias)))
    weights = pq.PredictorWeights(weights.input_mean.astype(np.float32).astype(np.float64),
                                  weights.input_scale.astype(np.float32).astype(np.float64),
                                  *(getattr(weights, n) for n in pq.PredictorWeights.TENSOR_NAMES[2:]))
    return weights, history


def _weights_of(w: pq.PredictorWeights, output: bool):
    return (w.weight_out, w.bias_out) if output else (w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh)


# ---------------------------------------------------------------- residual tables

def train_residual_tables(residual: np.ndarray, allocation: pq.BitAllocation, *, iterations: int, seed: int,
                          max_vectors: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """c0 levels (sorted) and the stage codebooks from residuals (N, 18) of non-silent end frames."""
    rng = np.random.default_rng(seed)
    if residual.shape[0] > max_vectors:
        residual = residual[rng.choice(residual.shape[0], size=max_vectors, replace=False)]
    energy = np.sort(vq.lbg(residual[:, :1], size=1 << allocation.energy_bits, iterations=iterations,
                            seed=seed).codebook[:, 0])
    stages: dict[str, np.ndarray] = {}
    left = residual[:, 1:].copy()
    for s in range(allocation.n_stages):
        sizes = sorted({1 << bits[s] for bits in allocation.stage_bits}, reverse=True)
        for size in sizes:
            stages[f"stage{s + 1}_{size}"] = vq.lbg(left, size=size, iterations=iterations,
                                                     seed=seed + 10 * s + size).codebook
        index, _ = vq.nearest(left, stages[f"stage{s + 1}_{sizes[0]}"])
        left -= stages[f"stage{s + 1}_{sizes[0]}"][index]
    return energy, stages


def make_tables(predictor, energy, stages, bounds, base, allocation) -> pq.PredictiveTables:
    tensors = {f"predictor.{n}": getattr(predictor, n) for n in pq.PredictorWeights.TENSOR_NAMES}
    tensors.update({"energy": energy, "cepstrum_min": bounds[0], "cepstrum_max": bounds[1], **stages})
    tensors = {k: np.asarray(v, dtype=np.float32).astype(np.float64) for k, v in tensors.items()}
    return pq.PredictiveTables.from_tensors(tensors, base=base, allocation=allocation)


def closed_loop(files, tables: pq.PredictiveTables, survivors: int, **search):
    """Encode every file from the initial state, all in lockstep; per file the decoded cepstrum and residuals."""
    lengths = np.array([f["cepstrum"].shape[0] // F for f in files])
    order = np.argsort(-lengths, kind="stable")
    n = len(files)
    cep = np.zeros((n, lengths.max(), F, pq.N_BANDS))
    per = np.zeros((n, lengths.max(), F))
    cor = np.zeros_like(per)
    for row, i in enumerate(order):
        p = lengths[i]
        cep[row, :p] = files[i]["cepstrum"].reshape(p, F, pq.N_BANDS)
        per[row, :p] = files[i]["period"].reshape(p, F)
        cor[row, :p] = files[i]["correlation"].reshape(p, F)
    decoded = np.zeros_like(cep)
    residual = np.full((n, lengths.max(), pq.N_BANDS), np.nan)
    state = pq.initial_state(tables, (n,))
    sorted_lengths = lengths[order]
    for p in range(lengths.max()):
        k = int(np.sum(sorted_lengths > p))
        state = pq.PredictorState(state.hidden[:k], state.frames[:k], state.pitch[:k], state.position)
        result = pq.encode_subpacket(tables, state, cep[:k, p], per[:k, p], cor[:k, p], survivors=survivors,
                                     **search)
        decoded[:k, p] = result.frames
        residual[:k, p] = result.residual
        state = result.state
    out_decoded, out_residual = [None] * n, [None] * n
    for row, i in enumerate(order):
        p = lengths[i]
        out_decoded[i] = decoded[row, :p].reshape(p * F, pq.N_BANDS)
        out_residual[i] = residual[row, :p]
    return out_decoded, out_residual


def residual_vectors(files, residuals) -> np.ndarray:
    vectors = []
    for f, r in zip(files, residuals):
        end_c0 = f["cepstrum"][F - 1::F, 0]
        vectors.append(r[end_c0 > SILENCE_C0])
    return np.concatenate(vectors)


# ---------------------------------------------------------------- evaluation

def distances(files, decoded) -> dict[str, float]:
    d = np.concatenate([cepstral_distance_db(f["cepstrum"], q).reshape(-1, F) for f, q in zip(files, decoded)])
    return {"all": round(float(d.mean()), 4), **{f"frame{k}": round(float(d[:, k].mean()), 4) for k in range(F)}}


def baseline_decoded(files) -> list[np.ndarray]:
    from nsac.codecs.lpcnet.codebooks import shipped_codebooks

    books = shipped_codebooks()
    return [lq.decode(lq.encode(f["cepstrum"], f["period"], f["correlation"], codebooks=books),
                      codebooks=books).cepstrum for f in files]


def loss_recovery(files, tables: pq.PredictiveTables, *, survivors: int, after: int = 24) -> dict[str, object]:
    """Lose super-packet 2 of each file long enough, conceal as the codec does; extra distance per sub-packet."""
    from nsac.codecs.lpcnet.pred import concealed_features, predictor_features_after_loss

    n = pq.FRAMES_PER_SUPERPACKET
    extra = []
    for f in files:
        n_super = f["cepstrum"].shape[0] // n
        if n_super < 3 + -(-after // pq.SUBPACKETS):
            continue
        usable = n_super * n
        packets = pq.encode(f["cepstrum"][:usable], f["period"][:usable], f["correlation"][:usable],
                            tables=tables, survivors=survivors)
        good = pq.decode(packets, tables=tables).cepstrum
        decoder = pq.PredictiveDecoder(tables)
        out, last = [], None
        for i, packet in enumerate(packets):
            if i == 2:
                decoder.conceal(*predictor_features_after_loss(last, n))
                out.append(concealed_features(last, n)[0])
            else:
                features = decoder.decode(packet)
                out.append(features.cepstrum)
                last = (features.cepstrum[-1], features.pitch_period[-1], features.pitch_correlation[-1])
        lossy = np.concatenate(out)
        frames = slice(3 * n, 3 * n + after * F)
        clean = f["cepstrum"][frames]
        d_lossy = cepstral_distance_db(clean, lossy[frames]).reshape(after, F).mean(1)
        d_good = cepstral_distance_db(clean, good[frames]).reshape(after, F).mean(1)
        extra.append(d_lossy - d_good)
    extra = np.array(extra)
    return {"files": int(extra.shape[0]), "lost": "super-packet 2 of each file (frames 24..35)",
            "extra_distance_db_per_subpacket_after_the_loss": np.round(extra.mean(0), 3).tolist()}


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder with train.npz and valid.npz (nsac.train.lpcnet_data)")
    parser.add_argument("--out", required=True, help="folder for the tables and their note")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=128, help="GRU units of the predictor")
    parser.add_argument("--epochs", type=int, default=15, help="predictor epochs, open loop")
    parser.add_argument("--finetune-epochs", type=int, default=4, help="predictor epochs per closed-loop round")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--rounds", type=int, default=2, help="closed-loop rounds")
    parser.add_argument("--iterations", type=int, default=10, help="Lloyd iterations per LBG split")
    parser.add_argument("--vq-vectors", type=int, default=150_000, help="residuals per codebook training")
    parser.add_argument("--survivors", type=int, default=pq.DEFAULT_SURVIVORS)
    parser.add_argument("--energy-candidates", type=int, default=pq.ENERGY_CANDIDATES)
    parser.add_argument("--last-stage-candidates", type=int, default=pq.LAST_STAGE_CANDIDATES)
    parser.add_argument("--energy-bits", type=int, default=pq.DEFAULT_ALLOCATION.energy_bits)
    parser.add_argument("--stage-bits", help="per sub-packet, '/'-separated (default: the quantizer's, "
                        + "/".join(",".join(map(str, b)) for b in pq.DEFAULT_ALLOCATION.stage_bits) + ")",
                        default="/".join(",".join(map(str, b)) for b in pq.DEFAULT_ALLOCATION.stage_bits))
    parser.add_argument("--max-files", type=int, default=0, help="use only this many training files (tests)")
    parser.add_argument("--no-write", action="store_true", help="evaluate only")
    args = parser.parse_args(argv)

    import torch

    from nsac.codecs.lpcnet.codebooks import CODEBOOKS_SHA256, shipped_codebooks

    torch.set_num_threads(1)
    try:  # numpy's BLAS on one thread too (or set OMP_NUM_THREADS=1 before starting)
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        log("threadpoolctl is not installed: numpy's BLAS threads follow OMP_NUM_THREADS")
    start = time.time()
    cpu_start = time.process_time()
    allocation = pq.BitAllocation(args.energy_bits, tuple(tuple(int(b) for b in part.split(","))
                                                          for part in args.stage_bits.split("/")))
    data = Path(args.data)
    search = {"energy_candidates": args.energy_candidates, "last_stage_candidates": args.last_stage_candidates}
    train_search = {"energy_candidates": 1, "last_stage_candidates": 1}
    """The training set is encoded with the nearest end frame (16 times less work; the residuals the tables
    are trained on come before the end frame is chosen, and the decoded features differ little)."""
    train = load_files(data / "train.npz")
    if args.max_files:
        train = train[: args.max_files]
    valid = load_files(data / "valid.npz")
    all_ceps = np.concatenate([f["cepstrum"] for f in train])
    bounds = (all_ceps.min(axis=0), all_ceps.max(axis=0))
    log(f"{len(train)} training files ({all_ceps.shape[0]} frames), {len(valid)} validation files")
    base = shipped_codebooks()
    timings = {}

    t = time.process_time()
    predictor, history = train_predictor(train, [f["decoded"] for f in train], hidden=args.hidden,
                                         epochs=args.epochs, lr=args.lr, seed=args.seed)
    timings["predictor_cpu_s"] = round(time.process_time() - t, 1)
    histories = {"open_loop": [round(v, 4) for v in history]}

    def residual_tables(residuals, files):
        t = time.process_time()
        vectors = residual_vectors(files, residuals)
        energy, stages = train_residual_tables(vectors, allocation, iterations=args.iterations, seed=args.seed,
                                               max_vectors=args.vq_vectors)
        timings.setdefault("tables_cpu_s", []).append(round(time.process_time() - t, 1))
        return energy, stages

    open_residuals = []
    for f in train:
        x, prev_end, target = predictor_arrays(f, f["decoded"])
        hidden = np.zeros(predictor.hidden_units)
        rows = []
        for p in range(x.shape[0]):
            hidden = pq.gru_step(predictor, hidden, x[p])
            rows.append(target[p] - (prev_end[p] + hidden @ predictor.weight_out.T + predictor.bias_out))
        open_residuals.append(np.array(rows))
    energy, stages = residual_tables(open_residuals, train)
    tables = make_tables(predictor, energy, stages, bounds, base, allocation)
    report = {}
    valid_decoded, _ = closed_loop(valid, tables, args.survivors, **search)
    report["open_loop_tables"] = distances(valid, valid_decoded)
    log(f"validation distance, open-loop tables: {report['open_loop_tables']}")

    for r in range(args.rounds):
        t = time.process_time()
        decoded, residuals = closed_loop(train, tables, args.survivors, **train_search)
        timings.setdefault("closed_loop_cpu_s", []).append(round(time.process_time() - t, 1))
        if args.finetune_epochs:
            t = time.process_time()
            predictor, history = train_predictor(train, decoded, hidden=args.hidden, epochs=args.finetune_epochs,
                                                 lr=args.lr / 3, seed=args.seed + r + 1, init=predictor)
            histories[f"round{r + 1}"] = [round(v, 4) for v in history]
            timings.setdefault("finetune_cpu_s", []).append(round(time.process_time() - t, 1))
            tables = make_tables(predictor, tables.energy, tables.stages, bounds, base, allocation)
            decoded, residuals = closed_loop(train, tables, args.survivors, **train_search)
        energy, stages = residual_tables(residuals, train)
        tables = make_tables(predictor, energy, stages, bounds, base, allocation)
        valid_decoded, _ = closed_loop(valid, tables, args.survivors, **search)
        report[f"round{r + 1}"] = distances(valid, valid_decoded)
        log(f"validation distance, closed-loop round {r + 1}: {report[f'round{r + 1}']}")

    report["lpcnet_1600"] = distances(valid, baseline_decoded(valid))
    log(f"validation distance, 1.6 kb/s quantizer: {report['lpcnet_1600']}")
    zeroed = make_tables(pq.PredictorWeights(*(np.zeros_like(getattr(predictor, n)) if n.endswith("_out")
                                               else getattr(predictor, n)
                                               for n in pq.PredictorWeights.TENSOR_NAMES)),
                         tables.energy, tables.stages, bounds, base, allocation)
    report["predictor_output_zeroed"] = distances(valid, closed_loop(valid, zeroed, args.survivors, **search)[0])
    log(f"validation distance with the predictor's output zeroed (prediction = L): "
        f"{report['predictor_output_zeroed']}")
    recovery = loss_recovery(valid, tables, survivors=args.survivors)
    log(f"after a lost super-packet: {recovery}")
    timings["total_cpu_s"] = round(time.process_time() - cpu_start, 1)
    timings["wall_s"] = round(time.time() - start, 1)
    log(f"timings {timings}")
    if args.no_write:
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).parent).stdout.strip()
    tmp = out / "lpcnet_pred.tmp.safetensors"
    sha = vq.save_codebooks(tmp, tables.to_tensors(), metadata={"seed": args.seed, "git_revision": revision},
                            dtype="float32")
    final = out / f"lpcnet_pred_{sha[:8]}.safetensors"
    tmp.replace(final)
    note = {
        "what": "tables of the predictive LPCNet quantizer at 1.47 kb/s (nsac.quant.lpcnet_pred_quantizer)",
        "file": final.name, "sha256": sha,
        "base_codebooks_sha256": CODEBOOKS_SHA256,
        "allocation": {"energy_bits": allocation.energy_bits,
                       "stage_bits": [list(b) for b in allocation.stage_bits],
                       "superpacket_bits": pq.SUPERPACKET_BITS},
        "data": {"folder": str(data), "train_files": len(train), "train_frames": int(all_ceps.shape[0]),
                 "valid_files": len(valid), "valid": "speakers held out of the train split (never the test split)"},
        "predictor": {"gru_units": args.hidden, "inputs": pq.PREDICTOR_INPUTS, "open_loop_epochs": args.epochs,
                      "finetune_epochs_per_round": args.finetune_epochs, "lr": args.lr,
                      "loss": "MSE of the end frame's c0..c17", "history": histories},
        "residual_tables": {"algorithm": "LBG splitting (nsac.quant.vq.lbg), stage after stage",
                            "lloyd_iterations_per_split": args.iterations, "vectors": args.vq_vectors,
                            "closed_loop_rounds": args.rounds},
        "encoder_search": {"survivors": args.survivors, **search, "end_frame_weight": pq.END_FRAME_WEIGHT},
        "validation_cepstral_distance_db": report,
        "distance": "nsac.dsp.features.cepstral_distance_db of decoded vs. clean cepstrum (c0 included), mean "
                    "over all frames of the validation files, frameK = position K in the 40 ms sub-packet",
        "loss_recovery": recovery,
        "storage": "float32 safetensors",
        "seed": args.seed,
        "timings": timings,
        "machine": f"{os.cpu_count()} CPU cores visible, one thread, numpy {np.__version__}, torch {torch.__version__}",
        "git_revision": revision,
        "determinism": "seeded (torch, subsets, LBG); float rounding may differ between machines",
        "command": "python -m nsac.train.lpcnet_pred " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    (out / f"lpcnet_pred_{sha[:8]}.json").write_text(json.dumps(note, indent=2) + "\n")
    log(f"wrote {final} ({final.stat().st_size} bytes), sha256 {sha}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
