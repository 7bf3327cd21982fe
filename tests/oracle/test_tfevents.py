#!/usr/bin/python3
"""--report-to tensorboard: the event file temper writes, decoded without TensorFlow.
The TFRecord framing is read by hand (uint64 length, masked CRC32C of the length, data,
masked CRC32C of the data; both CRCs checked with a CRC-32C written here), and each
record is parsed by python3-protobuf (Debian's) as tensorflow.Event, whose message
classes are built here from the published field numbers of event.proto / summary.proto
(Event: wall_time 1 double, step 2 int64, file_version 3 string, summary 5; Summary:
repeated Value value 1; Value: tag 1 string, simple_value 2 float). Every number of
metrics.jsonl but step must be in the file as transformers' TensorBoardCallback writes
it: train/<key> or eval/<key>, at the entry's step, equal as a float32."""
import glob, json, os, shutil, struct, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import TEMPER, check, done

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError:
    print("ok - TensorBoard event files # SKIP python3-protobuf is not installed (scripts/install-deps)")
    sys.exit(0)

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF

def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

check(crc32c(b"123456789") == 0xE3069283, "the oracle's own CRC-32C gives the check value 0xe3069283")

# tensorflow.Event / Summary / Summary.Value, from the published field numbers
F = descriptor_pb2.FieldDescriptorProto
fp = descriptor_pb2.FileDescriptorProto(name="temper_event.proto", package="tensorflow", syntax="proto3")
summary = fp.message_type.add(name="Summary")
value = summary.nested_type.add(name="Value")
value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED, type_name=".tensorflow.Summary.Value")
event = fp.message_type.add(name="Event")
event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".tensorflow.Summary")
pool = descriptor_pool.DescriptorPool()
pool.Add(fp)
desc = pool.FindMessageTypeByName("tensorflow.Event")
Event = message_factory.GetMessageClass(desc) if hasattr(message_factory, "GetMessageClass") else \
    message_factory.MessageFactory(pool).GetPrototype(desc)

def records(path):
    data = open(path, "rb").read()
    out, off, crc_ok = [], 0, True
    while off < len(data):
        if off + 12 > len(data):
            return out, False, "a truncated header at byte %d" % off
        (n,) = struct.unpack_from("<Q", data, off)
        (c1,) = struct.unpack_from("<I", data, off + 8)
        crc_ok &= c1 == masked(crc32c(data[off:off + 8]))
        body = data[off + 12:off + 12 + n]
        if len(body) != n or off + 16 + n > len(data):
            return out, False, "a truncated record at byte %d" % off
        (c2,) = struct.unpack_from("<I", data, off + 12 + n)
        crc_ok &= c2 == masked(crc32c(body))
        out.append(body)
        off += 16 + n
    return out, crc_ok, ""

tmp = tempfile.mkdtemp(prefix="temper-tfevents-")
m = os.path.join(tmp, "m")
subprocess.run([TEMPER, "init", "--preset", "tiny", "--out", m, "--seed", "2"], capture_output=True)
data = os.path.join(tmp, "sft.jsonl")
with open(data, "w") as f:
    for i in range(8):
        f.write(json.dumps({"prompt_input_ids": [1, 2, 3 + i], "completion_input_ids": [4, 5 + i % 3, 6]}) + "\n")
out = os.path.join(tmp, "out")
r = subprocess.run([TEMPER, "sft", "--model", m, "--data", data, "--eval-data", data, "--output-dir", out, "--max-steps", "3",
                    "--logging-steps", "1", "--eval-steps", "2", "--per-device-train-batch-size", "4", "--report-to", "tensorboard",
                    "--quiet"], capture_output=True, text=True)
check(r.returncode == 0, "sft --report-to tensorboard runs (%s)" % r.stderr.strip()[-300:])
files = glob.glob(os.path.join(out, "runs", "*", "events.out.tfevents.*"))
check(len(files) == 1, "one event file under OUTPUT_DIR/runs/<date>_<host>/ (TRL's logging_dir): %s" % [os.path.relpath(f, out) for f in files])
recs, crc_ok, why = records(files[0]) if files else ([], False, "no file")
check(recs and crc_ok and not why, "TFRecord framing: %d records, every length and data CRC32C checks %s" % (len(recs), why))
events = [Event.FromString(b) for b in recs]
check(events and events[0].file_version == "brain.Event:2" and events[0].wall_time > 1.7e9,
      "the first record is the file_version event \"brain.Event:2\" with a wall time")
got = {}
for e in events[1:]:
    for v in e.summary.value:
        got[(v.tag, e.step)] = v.simple_value
want = {}
for line in open(os.path.join(out, "metrics.jsonl")):
    row = json.loads(line)
    for k, v in row.items():
        if k == "step" or not isinstance(v, (int, float)):
            continue
        tag = "eval/" + k[5:] if k.startswith("eval_") else "train/" + k
        want[(tag, row["step"])] = struct.unpack("<f", struct.pack("<f", v))[0]
missing = [k for k in want if k not in got]
wrong = [(k, got[k], want[k]) for k in want if k in got and got[k] != want[k]]
check(want and not missing and not wrong and len(got) == len(want),
      "every number of metrics.jsonl is a scalar at its step, equal as float32 (%d scalars; missing %s, wrong %s, extra %d)"
      % (len(want), missing[:3], wrong[:3], len(got) - len(want)))
for tag in ("train/loss", "train/learning_rate", "train/mean_token_accuracy", "eval/loss", "train/train_runtime", "train/train_loss"):
    check(any(t == tag for t, _ in got), "tag %s is there" % tag)
check(all(e.wall_time > 1.7e9 for e in events), "every event has a wall time")
r = subprocess.run([TEMPER, "sft", "--model", m, "--data", data, "--output-dir", os.path.join(tmp, "w"), "--report-to", "wandb"],
                   capture_output=True, text=True)
check(r.returncode != 0 and "--report-to wandb is not supported" in r.stderr, "--report-to wandb is refused by name")
r = subprocess.run([TEMPER, "sft", "--model", m, "--data", data, "--output-dir", os.path.join(tmp, "n"), "--max-steps", "1", "--report-to",
                    "none", "--quiet"], capture_output=True, text=True)
check(r.returncode == 0 and os.path.exists(os.path.join(tmp, "n", "metrics.jsonl")) and not os.path.exists(os.path.join(tmp, "n", "runs")),
      "--report-to none: metrics.jsonl still, no runs/")
shutil.rmtree(tmp)
done()
