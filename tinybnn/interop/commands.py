"""The interop commands, registered on the `tinybnn` group by `tinybnn.cli`:
`tinybnn convert-model` (a larq or QONNX file to a tinybnn model file) and `tinybnn export`
(a tinybnn model to QONNX); and `import_report`, the lines `tinybnn compile` prints about a
foreign model (how exactly tinybnn computes it, and its agreement on the user's data).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import TinyBNNError
from ..modelfile import load, save
from ..outputs import check_outputs
from ..training.data import load_dataset
from . import Imported, import_model, is_foreign


def import_report(imported: Imported, data: Path | None) -> list[str]:
    """What `tinybnn compile` and `convert-model` print about a foreign model."""
    path = imported.path
    lines = [imported.describe()]
    if data is not None:
        ds = load_dataset(data)
        if tuple(ds.input_shape) != tuple(imported.model.input_shape):
            raise TinyBNNError(
                f"{data}: windows of shape {list(ds.input_shape)}, but {path} takes "
                f"{list(imported.model.input_shape)} [channels, steps]"
            )
        agreement = imported.agreement(ds.X)
        lines.append(f"on {data}: tinybnn {agreement.describe()}")
        if agreement.same_class < agreement.windows or agreement.at_risk:
            lines.append(
                "warning: tinybnn's quantised class can differ from the framework's on this "
                "model; check the windows above before you deploy it"
            )
    elif not imported.exactness.exact:
        lines.append(
            f"warning: tinybnn's quantised class could differ from {imported.graph.framework}'s; "
            "give --data DATA.npz to measure the agreement"
        )
    return lines


def register(group: click.Group) -> None:
    """Add the interop commands to the `tinybnn` click group."""

    @group.command("convert-model")
    @click.argument("source", type=click.Path(path_type=Path))
    @click.argument("model", type=click.Path(path_type=Path))
    @click.option(
        "--data",
        type=click.Path(path_type=Path),
        help="A dataset .npz (X [N, C, T] int16, y): measure tinybnn's agreement with the "
        "framework's classes on it.",
    )
    def convert_model_command(source: Path, model: Path, data: Path | None) -> None:
        """Read SOURCE, a larq (.h5, .keras) or QONNX (.onnx) model, and write it as the tinybnn
        model file MODEL (.pt), to train further or compile."""
        if not is_foreign(source):
            raise TinyBNNError(f"{source}: not a larq (.h5, .keras) or QONNX (.onnx) file")
        check_outputs([model], {"the source model": source, "the data": data})
        imported = import_model(source)
        for line in import_report(imported, data):
            click.echo(line)
        save(imported.model, model)
        click.echo(f"wrote {model}")

    @group.command("export")
    @click.argument("model", type=click.Path(path_type=Path))
    @click.argument("onnx_file", metavar="OUT.onnx", type=click.Path(path_type=Path))
    def export_command(model: Path, onnx_file: Path) -> None:
        """Write MODEL (a tinybnn model) as a QONNX graph, for the qonnx tools and FINN."""
        from .qonnx_export import export

        check_outputs([onnx_file], {"the model file": model})
        export(load(model), onnx_file)
        click.echo(f"wrote {onnx_file}")
