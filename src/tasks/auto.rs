//! `--task auto`: the task read off the outputs' dims (and the input size), only where the
//! layout leaves no doubt. The rules, in order:
//! - the outputs form a PicoDet head (2·4 maps, N = ⌈H/s⌉·⌈W/s⌉ for strides 8…64) → picodet;
//! - a CenterFace head (heatmap, scale, offset, landmarks at H/4 × W/4) → centerface;
//! - otherwise the first output: `[B, 1, H', W']` → db; `[B, C]` → cls;
//!   `[B, a, b]` with a < b: b = Σ (H/s)·(W/s) over strides 8, 16, 32 (one row per anchor
//!   point) → yolov8, else → ctc (`[B, T, C]`, more classes than time steps);
//!   `[B, N, 5+C]` with N = 3·Σ (three anchors per cell: anchor-based) → yolov5; with any
//!   other N the layout is YOLOv5's (YOLOv6 v1/v2 are anchor-free there too) and YOLOX's
//!   alike, and auto refuses, naming both.

use super::{CenterfaceParams, PicodetParams, Task, TaskError};

/// The task and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Picked {
    pub task: Task,
    pub reason: String,
}

fn anchor_points((h, w): (usize, usize)) -> usize {
    [8, 16, 32].iter().map(|s| (h / s) * (w / s)).sum()
}

fn refuse(reason: String, dims: &[&[usize]]) -> TaskError {
    TaskError::Auto { reason, found: dims.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", ") }
}

/// Picks the task for outputs of `dims` on an input of `hw` (height, width).
pub fn pick(dims: &[&[usize]], hw: (usize, usize)) -> Result<Picked, TaskError> {
    let Some(first) = dims.first() else {
        return Err(refuse("the model has no output".into(), dims));
    };
    let picked = |task: Task, reason: String| Ok(Picked { task, reason });
    let p = PicodetParams::default();
    if super::picodet::layout(&p, dims, hw).is_ok() {
        let n = p.strides.len();
        return picked(
            Task::Picodet(p.clone()),
            format!("{} outputs: {n} class-score maps and {n} DFL box maps matching strides {:?} on {}×{}", 2 * n, p.strides, hw.0, hw.1),
        );
    }
    if super::centerface::layout(dims, hw).is_ok() {
        return picked(Task::Centerface(CenterfaceParams::default()), "heatmap, scale and offset maps at stride 4".into());
    }
    let of = if dims.len() > 1 { format!(" (the first of {} outputs)", dims.len()) } else { String::new() };
    match **first {
        [_, 1, h, w] if h > 1 && w > 1 => picked("db".parse()?, format!("{first:?}{of}: one probability map")),
        [_, c] if c >= 1 => picked(Task::Cls, format!("{first:?}{of}: class scores")),
        [_, a, b] if a < b && b == anchor_points(hw) && a > 4 => picked(
            "yolov8".parse()?,
            format!("{first:?}{of}: [B, 4+C, N] with N = {b} anchor points (strides 8, 16, 32 on {}×{})", hw.0, hw.1),
        ),
        [_, a, b] if a < b => picked(Task::Ctc, format!("{first:?}{of}: [B, T, C] with {b} classes over {a} steps")),
        [_, n, a] if n > a && a > 5 && n == 3 * anchor_points(hw) => picked(
            "yolov5".parse()?,
            format!("{first:?}{of}: [B, N, 5+C] with N = 3 anchors × {} cells (strides 8, 16, 32): anchor-based", n / 3),
        ),
        [_, n, a] if n > a && a > 5 => Err(refuse(
            format!(
                "{first:?}{of} is [B, N, 5+C], the layout of both yolov5 (YOLOv5/v6/v7 heads) and yolox; \
                 its N = {n} does not prove anchors (3 per cell would be {}): give --task yolov5 or --task yolox",
                3 * anchor_points(hw)
            ),
            dims,
        )),
        _ => Err(refuse(
            "no known layout (picodet's 8 maps, centerface's 4, [B, 1, H, W] db, [B, C] cls, [B, 4+C, N] yolov8, [B, T, C] ctc, [B, N, 5+C] yolov5/yolox)"
                .into(),
            dims,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(dims: &[Vec<usize>], hw: (usize, usize)) -> Result<&'static str, String> {
        let refs: Vec<&[usize]> = dims.iter().map(Vec::as_slice).collect();
        pick(&refs, hw).map(|p| p.task.name()).map_err(|e| e.to_string())
    }

    #[test]
    fn layouts_pick_their_task_and_ambiguity_is_refused() {
        assert_eq!(name(&[vec![1, 1, 640, 640]], (640, 640)), Ok("db"));
        assert_eq!(name(&[vec![4, 2]], (48, 192)), Ok("cls"));
        assert_eq!(name(&[vec![1, 15, 21504]], (1024, 1024)), Ok("yolov8"));
        assert_eq!(name(&[vec![1, 40, 6625]], (48, 320)), Ok("ctc"));
        assert_eq!(name(&[vec![1, 25200, 85]], (640, 640)), Ok("yolov5"));
        let e = name(&[vec![1, 3549, 6]], (416, 416)).unwrap_err();
        assert!(e.contains("yolov5") && e.contains("yolox") && e.contains("[1, 3549, 6]") && e.contains("--task yolov5"), "{e}");
        let pico: Vec<Vec<usize>> =
            [7600, 1900, 475, 130].iter().map(|&n| vec![1, n, 10]).chain([7600, 1900, 475, 130].iter().map(|&n| vec![1, n, 32])).collect();
        assert_eq!(name(&pico, (800, 608)), Ok("picodet"));
        let cf = vec![vec![1, 1, 8, 8], vec![1, 2, 8, 8], vec![1, 2, 8, 8], vec![1, 10, 8, 8]];
        assert_eq!(name(&cf, (32, 32)), Ok("centerface"));
        // the same maps on another input size are no CenterFace head: the first output rules
        assert_eq!(name(&cf, (64, 64)), Ok("db"));
        assert!(name(&[vec![1, 2, 3, 4, 5]], (8, 8)).unwrap_err().contains("no known layout"));
        assert!(name(&[], (8, 8)).unwrap_err().contains("no output"));
    }
}
