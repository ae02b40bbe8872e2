"""The page: four panels (Sample, Explore a region, Transfer / normalize / restore, Model)
wired to :class:`~srflow.app.handlers.Handlers`. Layout only: no computation here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from srflow.app.handlers import Handlers, guarded
from srflow.app.models import ModelStore
from srflow.app.retention import Keeper
from srflow.app.session import Session

BRUSH = gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=12)
PAINT = gr.Brush(colors=["#ffffff", "#000000", "#d02020", "#20a020", "#2040d0"],
                 color_mode="defaults", default_size=8)  # fmt: skip


def _editor(label: str, elem_id: str, brush: gr.Brush) -> gr.ImageEditor:
    # webp: its picture never has the bytes (hence the cache file) of the PNG beside it; only
    # the painted layers are read back, over the exact image (images.paint_over)
    return gr.ImageEditor(label=label, elem_id=elem_id, type="numpy", brush=brush,
                          eraser=gr.Eraser(), transforms=(), sources=(), format="webp",
                          height=420)  # fmt: skip


def _image(label: str, elem_id: str) -> gr.Image:
    return gr.Image(label=label, elem_id=elem_id, format="png", interactive=False, height=420)


def _seed(value: int, elem_id: str) -> gr.Number:
    return gr.Number(value, precision=0, minimum=0, label="seed", elem_id=elem_id)


def _sample_panel(c: dict[str, Any], examples: list[Path]) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            c["upload"] = gr.File(label="LR image (PNG, JPEG, ...)", elem_id="upload")
            if examples:
                c["example"] = gr.Button(f"use the example ({examples[0].name})",
                                         elem_id="example", size="sm")  # fmt: skip
            c["preview"] = _image("input", "preview")
            c["temperature"] = gr.Textbox("0.8", elem_id="temperature",
                                          label="temperature: one value, or one per flow "
                                                "level (0.9 0.7 0.5)")  # fmt: skip
            c["count"] = gr.Slider(1, 16, value=3, step=1, label="samples", elem_id="count")
            c["seed"] = _seed(0, "seed")
            c["noise_level"] = gr.Textbox("", elem_id="noise-level",
                                          label="noise level (noise-conditioned models, "
                                                "NCSR: 0 to 1; empty: the default)")  # fmt: skip
            with gr.Row():
                c["sample"] = gr.Button("Sample", variant="primary", elem_id="sample")
                c["cancel"] = gr.Button("Cancel", elem_id="cancel")
            c["sample_status"] = gr.Markdown(elem_id="sample-status")
        with gr.Column(scale=2):
            c["gallery"] = gr.Gallery(label="samples (LR-PSNR: consistency with the input)",
                                      format="png", columns=3, elem_id="gallery")  # fmt: skip
            with gr.Row():
                c["diversity"] = _image("diversity: per-pixel std across the samples",
                                        "diversity")  # fmt: skip
                c["downloads"] = gr.File(label="download (PNG named as `srflow sr` names them; "
                                               "the zip holds all)", file_count="multiple",
                                         interactive=False, elem_id="downloads")  # fmt: skip


def _explore_panel(c: dict[str, Any]) -> None:
    with gr.Row():
        with gr.Column():
            c["choose"] = gr.Dropdown(choices=[], label="sample", elem_id="choose")
            c["editor"] = _editor("paint the region to redraw", "editor", BRUSH)
            c["region_temperature"] = gr.Slider(0, 1.5, value=0.8, step=0.05,
                                                label="region temperature",
                                                elem_id="region-temperature")  # fmt: skip
            c["region_seed"] = _seed(1, "region-seed")
            with gr.Row():
                c["redraw"] = gr.Button("Redraw region", variant="primary", elem_id="redraw")
                c["undo"] = gr.Button("Undo", elem_id="undo")
            c["explore_status"] = gr.Markdown(elem_id="explore-status")
        with gr.Column():
            c["current"] = _image("current", "current")
            c["changed"] = _image("changed (white), could change (grey)", "changed")


def _transfer_panel(c: dict[str, Any]) -> None:
    with gr.Row():
        with gr.Column():
            with gr.Accordion("style transfer from a second image", open=True):
                c["style_source"] = gr.File(label="style source: an HR image, scale x the "
                                                  "input's size", elem_id="style-source")
                c["style"] = gr.Button("Transfer style onto the input", elem_id="style")
            with gr.Accordion("content transfer: paint content, then normalize it", open=True):
                c["paste"] = _editor("the explored sample: paint content on it", "paste", PAINT)
                c["content"] = gr.Button("Blend the painted content", elem_id="content")
            with gr.Accordion("restore a noisy or JPEG image", open=True):
                c["degraded"] = gr.File(label="degraded image", elem_id="degraded")
                c["restore"] = gr.Button("Restore", elem_id="restore")
            c["transfer_temperature"] = gr.Slider(0, 1.5, value=0.8, step=0.05,
                                                  label="temperature",
                                                  elem_id="transfer-temperature")  # fmt: skip
            c["transfer_seed"] = _seed(0, "transfer-seed")
        with gr.Column():
            c["transfer_out"] = _image("result", "transfer-out")
            c["transfer_status"] = gr.Markdown(elem_id="transfer-status")


def _model_panel(c: dict[str, Any], choices: list[str]) -> None:
    c["model_info"] = gr.Markdown(elem_id="model-info")
    c["model_path"] = gr.Dropdown(choices=choices, value=choices[0], elem_id="model-path",
                                  label="the server's models (srflow app --models-dir DIR "
                                        "offers more)")  # fmt: skip
    c["model_upload"] = gr.File(label="or upload a model file (.safetensors or a published "
                                      ".pth)", file_types=[".safetensors", ".pth"],
                                elem_id="model-upload")  # fmt: skip
    c["load"] = gr.Button("Load", elem_id="load")
    c["model_status"] = gr.Markdown(elem_id="model-status")


#: The queue every piece of work joins (see ``_wire``).
WORK = "work"
#: The components each callback may update (besides its status line and the state).
SAMPLE_OUT = ["gallery", "diversity", "downloads", "choose"]
SHOWN_OUT = ["current", "changed"]


def _progress_shown_on(outputs: list[Any]) -> list[Any]:
    """The outputs that show an event's progress: never an image editor. Under CPU load,
    gradio (6.31) was seen leaving an editor's progress overlay on "processing" for good after
    its event had ended (the browser test), covering the picture to paint on."""
    return [o for o in outputs if not isinstance(o, (gr.ImageEditor, gr.State))]


def _wire(h: Handlers, c: dict[str, Any], examples: list[Path]) -> None:
    state = c["state"]

    def on(trigger: Any, handler: Any, status: str, inputs: list[Any], out: list[str]) -> Any:
        outputs = [c[name] for name in dict.fromkeys([*out, status])] + [state]
        # one queue for all work: several panels (or tabs) never run at once, so the
        # server's memory is that of one job whatever the clients do
        return trigger(guarded(c[status])(handler), inputs=[*inputs, state], outputs=outputs,
                       show_progress_on=_progress_shown_on(outputs), concurrency_id=WORK,
                       concurrency_limit=1)  # fmt: skip

    upload_out = ["upload", "preview"]
    on(c["upload"].upload, h.upload, "sample_status", [c["upload"]], upload_out)
    if examples:
        c["example_path"] = gr.State(str(examples[0]))
        on(c["example"].click, h.upload, "sample_status", [c["example_path"]], upload_out)
    on(c["sample"].click, h.sample, "sample_status",
       [c["temperature"], c["count"], c["seed"], c["noise_level"]], SAMPLE_OUT)  # fmt: skip
    # not gradio's `cancels`: that drops the event but leaves its thread running; the flag
    # stops the work itself at its next sample, and the page then says "cancelled"
    c["cancel"].click(h.cancel, inputs=[state], outputs=[], queue=False)
    # images and editors filled while their tab is hidden may stay blank: fill them when shown
    c["explore_tab"].select(h.show_explored(["editor"], ["current"]), inputs=[state],
                            outputs=[c["editor"], c["current"]], show_progress_on=[c["current"]])
    c["transfer_tab"].select(h.show_explored(["paste"], []), inputs=[state],
                             outputs=[c["paste"]], show_progress="hidden")  # fmt: skip
    on(c["choose"].input, h.choose, "explore_status", [c["choose"]], [*SHOWN_OUT, "editor"])
    on(c["redraw"].click, h.redraw, "explore_status",
       [c["editor"], c["region_temperature"], c["region_seed"]], SHOWN_OUT)  # fmt: skip
    on(c["undo"].click, h.undo, "explore_status", [], SHOWN_OUT)
    knobs = [c["transfer_temperature"], c["transfer_seed"]]
    for button, handler, source in (("style", h.style, "style_source"),
                                    ("content", h.content, "paste"),
                                    ("restore", h.restore, "degraded")):  # fmt: skip
        on(c[button].click, handler, "transfer_status", [c[source], *knobs], ["transfer_out"])
    on(c["load"].click, h.model, "model_status", [c["model_path"], c["model_upload"]],
       ["model_info", "model_upload"])  # fmt: skip


def _new_session() -> Session:
    return Session()


def build(store: ModelStore, max_pixels: int, examples: list[Path], keeper: Keeper) -> gr.Blocks:
    """The app's page (not launched)."""
    c: dict[str, Any] = {}
    idle = keeper.limits.idle_seconds
    # the framework's own copies of shown images are deleted once as old as an idle tab
    with gr.Blocks(title="srflow explorer", analytics_enabled=False,
                   delete_cache=(max(60, int(idle // 4)), int(idle))) as page:  # fmt: skip
        # called once per tab: tabs never share results; dropped (and released) when the
        # tab is idle for the keeper's time
        c["state"] = gr.State(_new_session, time_to_live=idle, delete_callback=keeper.forget)
        gr.Markdown("## srflow explorer: the space of super-resolutions of a photo")
        with gr.Tab("Sample", elem_id="tab-sample"):
            _sample_panel(c, examples)
        with gr.Tab("Explore a region", elem_id="tab-explore") as c["explore_tab"]:
            _explore_panel(c)
        with gr.Tab("Transfer / normalize / restore", elem_id="tab-transfer") as c["transfer_tab"]:
            _transfer_panel(c)
        with gr.Tab("Model", elem_id="tab-model"):
            _model_panel(c, store.choices())
        handlers = Handlers(store, max_pixels, c, keeper)
        _wire(handlers, c, examples)
        page.load(guarded(c["model_status"])(lambda s: handlers.model(None, None, s)),
                  inputs=[c["state"]], outputs=[c["model_info"], c["model_status"],
                                                c["model_upload"], c["state"]])  # fmt: skip

        def closed(request: gr.Request) -> None:  # the tab closed, or its client went away
            keeper.close(request.session_hash)

        page.unload(closed)
    return page
