"""What IT needs to know about a department's model server before the ward PCs use it, read from the server
as the ward PCs will connect: the model, the context one request gets (a llama-server slot), the record part
that fits it, the grammar probe, TLS; and, on request, the sample record through the whole pipeline. The CLI
(``medbrief server check``) prints it; the settings dialog's 检查服务器 shows it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from inference.documents import load_document
from inference.errors import GenerationError
from inference.icd.table import open_table
from inference.llm.server import ServerEngine
from inference.llm.settings import EngineSettings
from inference.paths import sample_record_path
from inference.pipeline import run_pipeline
from inference.summary.summarizer import part_tokens


@dataclass(frozen=True)
class SampleRun:
    seconds: float
    calls: int
    completion_tokens: int
    diagnoses: int
    diagnoses_coded: int


@dataclass(frozen=True)
class ServerCheck:
    url: str
    model: str
    engine: str
    slots: int | None
    context_per_request: int
    context_from_server: bool
    constraint: str
    tls: bool
    demo: bool
    warning: str
    part_tokens: int | None  # None: the context cannot hold the prompt and the output (``problem`` says why)
    problem: str | None = None
    sample: SampleRun | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report in Chinese, one fact a line, as the window and ``medbrief server check`` show it."""
        slots = f"{self.slots} 个槽位" if self.slots else "未说明"
        origin = "服务器所报" if self.context_from_server else "服务器未说明，按设置 n_ctx"
        lines = [f"服务器：{self.url}（{'HTTPS' if self.tls else '明文 HTTP'}）", f"模型：{self.model}",
                 f"引擎：{self.engine}，并行：{slots}", f"每次请求的上下文：{self.context_per_request} token（{origin}）",
                 f"输出约束：生效（{self.constraint}）"]
        if self.part_tokens is not None:
            lines.append(f"病历分段：每段至多 {self.part_tokens} token")
        if self.sample is not None:
            s = self.sample
            lines.append(f"样例病历：{s.seconds} 秒，{s.calls} 次调用，{s.completion_tokens} 个输出 token，"
                         f"{s.diagnoses_coded}/{s.diagnoses} 个诊断已编码")
        if self.demo:
            lines.append("警告：服务器运行的是演示模型（非临床用途）")
        if self.warning:
            lines.append(f"警告：{self.warning}")
        return lines


def check_server(settings: EngineSettings, *, sample: bool = False) -> ServerCheck:
    """Connect as the ward PCs will (a ModelError when the server cannot be used at all), then read what it can
    do; a slot too small is the check's ``problem``, and no sample is run."""
    engine = ServerEngine(settings)
    try:
        parts: int | None = part_tokens(engine)
        problem = None
    except GenerationError as exc:
        parts, problem = None, exc.message
    return ServerCheck(
        url=engine.url, model=engine.model_id, engine=engine.facts.engine, slots=engine.facts.slots,
        context_per_request=engine.info.n_ctx, context_from_server=engine.facts.slot_context is not None,
        constraint=settings.server_constraint, tls=engine.url.startswith("https://"), demo=engine.info.is_demo,
        warning=engine.info.warning, part_tokens=parts, problem=problem,
        sample=_sample(engine) if sample and problem is None else None,
    )


def _sample(engine: ServerEngine) -> SampleRun:
    """The bundled sample record through the whole pipeline, coded against the bundled table."""
    report = run_pipeline(load_document(sample_record_path()), engine, table=open_table(None))
    timings = report.result.timings
    return SampleRun(seconds=round(report.elapsed_s, 1), calls=len(timings.calls),
                     completion_tokens=timings.completion_tokens, diagnoses=len(report.result.summary.diagnoses),
                     diagnoses_coded=sum(1 for assignment in report.icd if assignment.code))
