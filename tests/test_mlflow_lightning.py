"""PyTorch Lightning's MLFlowLogger, pointed at the real service, trains and logs there."""

from __future__ import annotations

from pathlib import Path

import pytest

lightning = pytest.importorskip("lightning")
torch = pytest.importorskip("torch")

from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import MLFlowLogger  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.tracking._tracking_service import utils as tracking_utils  # noqa: E402

from tests.support import live_server  # noqa: E402


class _Regression(lightning.LightningModule):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.save_hyperparameters({"optimizer": "sgd_momentum", "momentum": 0.9, "lr": 0.05})
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _index: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_lightning_mlflow_logger_logs_to_the_service(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=8
    )
    tracking_utils._artifact_repos_cache.clear()  # run ids repeat across tests' databases
    env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_ARTIFACT_ROOT": str(tmp_path / "a")}
    with live_server(env, timeout=120) as url:
        # log_model=True: the checkpoint goes up as an artifact when training ends.
        logger = MLFlowLogger(experiment_name="lightning", tracking_uri=url, log_model=True)
        checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints")
        trainer = lightning.Trainer(
            max_epochs=2,
            logger=logger,
            log_every_n_steps=1,
            callbacks=[checkpoint],
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(_Regression(), data)
        history = MlflowClient(url).get_metric_history(logger.run_id, "train_loss")
        assert [m.step for m in history] == list(range(16))
        assert history[-1].value < history[0].value
        run = MlflowClient(url).get_run(logger.run_id)
        assert run.data.params["momentum"] == "0.9" and run.info.status == "FINISHED"
        [folder] = MlflowClient(url).list_artifacts(logger.run_id)  # the checkpoint's stem
        inside = MlflowClient(url).list_artifacts(logger.run_id, folder.path)
        [saved] = [f for f in inside if f.path.endswith(".ckpt")]
        assert saved.file_size and saved.file_size > 0
        stored = tmp_path / "a" / logger.run_id / saved.path
        assert stored.read_bytes() == Path(checkpoint.best_model_path).read_bytes()
