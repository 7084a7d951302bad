//! The report's plots: plotters with the SVG backend only (no fonts, no C libraries; FIELD-NOTES). Each
//! function returns one self-contained SVG document.

use plotters::prelude::*;

use super::aggregate::CellStats;
use super::results::{FaultWindow, GroupTimeline, Timeline};

type Out = Result<String, String>;
const FONT: &str = "sans-serif";
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x9e, 0x9e, 0x9e),
    RGBColor(0xe6, 0x7e, 0x22),
    RGBColor(0x34, 0x98, 0xdb),
    RGBColor(0x1a, 0x5f, 0x9e),
    RGBColor(0xc0, 0x39, 0x2b),
    RGBColor(0x27, 0xae, 0x60),
];

fn err(e: impl std::fmt::Display) -> String {
    format!("cannot draw a plot: {e}")
}

/// The legend box every plot draws over its series.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(format!("{e:?}")))
}

/// The series a cell belongs to in the grouped bars.
fn series_of(c: &CellStats) -> usize {
    let unclean = if c.unclean_leader_election { 2 } else { 0 };
    match (c.acks.as_str(), c.min_insync_replicas) {
        ("0", _) => 0,
        ("1", _) => 1,
        (_, m) if m < 2 => 2 + unclean,
        _ => 3 + unclean,
    }
}

const SERIES: [&str; 6] = [
    "acks=0",
    "acks=1",
    "acks=all, min.insync.replicas=1",
    "acks=all, min.insync.replicas=2",
    "acks=all, min.insync.replicas=1, unclean election on",
    "acks=all, min.insync.replicas=2, unclean election on",
];

/// Grouped bars: per fault scenario, the share of in-contract runs that lost records, per configuration,
/// each bar labelled `lost/runs`.
pub fn loss_bars(cells: &[CellStats]) -> Out {
    let scenarios: Vec<&str> = {
        let mut v: Vec<&str> = cells.iter().map(|c| c.scenario.as_str()).collect();
        v.dedup();
        v
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = scenarios.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Runs that lost records, by fault scenario and configuration (in contract; label: lost/runs)",
                (FONT, 16),
            )
            .margin(12)
            .y_label_area_size(50)
            .x_label_area_size(10)
            .build_cartesian_2d(0f64..n, -14f64..112f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("runs that lost records (%)")
            .y_label_formatter(&|y| if *y < 0.0 { String::new() } else { format!("{y:.0}%") })
            .draw()
            .map_err(err)?;
        let width = 0.8 / SERIES.len() as f64;
        for (si, name) in SERIES.iter().enumerate() {
            let color = PALETTE[si];
            let bars: Vec<(f64, &CellStats)> = cells
                .iter()
                .filter(|c| series_of(c) == si)
                .filter_map(|c| {
                    let g = scenarios.iter().position(|s| *s == c.scenario)? as f64;
                    Some((g + 0.1 + si as f64 * width, c))
                })
                .collect();
            chart
                .draw_series(bars.iter().map(|(x, c)| {
                    let h = (c.loss_share() * 100.0).max(0.4);
                    Rectangle::new([(*x, 0.0), (*x + width * 0.9, h)], color.filled())
                }))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
            chart
                .draw_series(bars.iter().map(|(x, c)| {
                    Text::new(
                        format!("{}/{}", c.in_contract_lost, c.in_contract),
                        (*x, c.loss_share() * 100.0 + 6.0),
                        (FONT, 10),
                    )
                }))
                .map_err(err)?;
        }
        chart
            .draw_series(
                scenarios
                    .iter()
                    .enumerate()
                    .map(|(g, s)| Text::new(s.to_string(), (g as f64 + 0.1, -6.0), (FONT, 11))),
            )
            .map_err(err)?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Grouped bars on a log scale: produce latency p50, p99 and max per acks setting.
pub fn latency_bars(by_acks: &[(String, u64, [f64; 3])]) -> Out {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let top = by_acks.iter().map(|a| a.2[2]).fold(10.0, f64::max) * 3.0;
        let n = by_acks.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Produce latency by acks (simulated ms; mean of runs' p50 and p99, largest max)",
                (FONT, 15),
            )
            .margin(12)
            .y_label_area_size(60)
            .x_label_area_size(30)
            .build_cartesian_2d(0f64..n, (0.1f64..top).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("ms (log scale)")
            .draw()
            .map_err(err)?;
        for (k, label) in ["p50", "p99", "max"].iter().enumerate() {
            let color = PALETTE[k + 2];
            let x_of = |g: usize| g as f64 + 0.15 + k as f64 * 0.23;
            chart
                .draw_series(
                    by_acks.iter().enumerate().map(|(g, a)| {
                        Rectangle::new([(x_of(g), 0.1), (x_of(g) + 0.2, a.2[k].max(0.11))], color.filled())
                    }),
                )
                .map_err(err)?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
            chart
                .draw_series(
                    by_acks.iter().enumerate().map(|(g, a)| {
                        Text::new(format!("{:.0}", a.2[k]), (x_of(g), a.2[k].max(0.11) * 1.3), (FONT, 10))
                    }),
                )
                .map_err(err)?;
        }
        chart
            .draw_series(by_acks.iter().enumerate().map(|(g, a)| {
                Text::new(
                    format!("acks={} ({} runs)", a.0, a.1),
                    (g as f64 + 0.2, 0.13),
                    (FONT, 11),
                )
            }))
            .map_err(err)?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Shades each fault window over the chart's full height, labelled with its kind and target.
fn shade<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    faults: &[FaultWindow],
    y: (f64, f64),
) -> Result<(), String> {
    let fill = RGBColor(0xc0, 0x39, 0x2b).mix(0.12);
    chart
        .draw_series(
            faults
                .iter()
                .map(|f| Rectangle::new([(f.start_s, y.0), (f.end_s.max(f.start_s + 0.2), y.1)], fill.filled())),
        )
        .map_err(|e| err(format!("{e:?}")))?;
    chart
        .draw_series(faults.iter().enumerate().map(|(i, f)| {
            let at = y.1 - (y.1 - y.0) * (0.04 + 0.05 * (i % 4) as f64);
            Text::new(format!("{} {}", f.kind, f.target), (f.start_s, at), (FONT, 10))
        }))
        .map_err(|e| err(format!("{e:?}")))?;
    Ok(())
}

/// Cumulative acknowledged records that ended lost (lost-write, unseen) by the time they were acknowledged.
pub fn loss_over_time(t: &Timeline) -> Out {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let top = t.loss.iter().map(|p| p[1].max(p[2])).fold(1.0, f64::max) * 1.25;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Acknowledged records that ended lost, by ack time: {} acks={} min.insync.replicas={} seed {}",
                    t.scenario, t.acks, t.min_insync_replicas, t.seed
                ),
                (FONT, 15),
            )
            .margin(12)
            .y_label_area_size(55)
            .x_label_area_size(35)
            .build_cartesian_2d(0f64..t.end_s.max(1.0), 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("simulated seconds (shaded: faults)")
            .y_desc("records (cumulative)")
            .draw()
            .map_err(err)?;
        shade(&mut chart, &t.faults, (0.0, top))?;
        for (k, (label, color)) in [("lost-write", PALETTE[4]), ("unseen", PALETTE[1])]
            .into_iter()
            .enumerate()
        {
            chart
                .draw_series(LineSeries::new(
                    t.loss.iter().map(|p| (p[0], p[k + 1])),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2)));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A step line through (t, v) points, held until `end`.
fn steps(points: &[[f64; 2]], end: f64, lift: f64) -> Vec<(f64, f64)> {
    let mut out = vec![];
    for (i, p) in points.iter().enumerate() {
        let next = points.get(i + 1).map_or(end, |q| q[0]);
        out.push((p[0], p[1] + lift));
        out.push((next, p[1] + lift));
    }
    out
}

/// Two panels: the leader of each partition (as leaders report) with fault windows, then each replica's log
/// end offset (solid) and high watermark (dashed: thin) for the partition that lost the most.
pub fn timeline(t: &Timeline) -> Out {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (upper, lower) = root.split_vertically(260);
        let end = t.end_s.max(1.0);
        let brokers = t.leaders.values().flatten().map(|p| p[1]).fold(3.0, f64::max);
        let mut chart = ChartBuilder::on(&upper)
            .caption(
                format!(
                    "Timeline of {} acks={} min.insync.replicas={} seed {}: leader per partition",
                    t.scenario, t.acks, t.min_insync_replicas, t.seed
                ),
                (FONT, 15),
            )
            .margin(12)
            .y_label_area_size(55)
            .x_label_area_size(25)
            .build_cartesian_2d(0f64..end, 0f64..brokers + 1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .y_desc("leader (broker id)")
            .y_labels(brokers as usize + 2)
            .draw()
            .map_err(err)?;
        shade(&mut chart, &t.faults, (0.0, brokers + 1.0))?;
        for (i, (tp, points)) in t.leaders.iter().enumerate() {
            let color = PALETTE[(i + 1) % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    steps(points, end, 0.08 * i as f64),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(tp.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2)));
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        replica_panel(&lower, t, end)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn replica_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    t: &Timeline,
    end: f64,
) -> Result<(), String> {
    let top = t
        .replicas
        .values()
        .flatten()
        .map(|p| p[1].max(p[2]))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{}: log end offset (thick) and high watermark (thin) per replica",
                t.partition
            ),
            (FONT, 14),
        )
        .margin(12)
        .y_label_area_size(55)
        .x_label_area_size(35)
        .build_cartesian_2d(0f64..end, 0f64..top)
        .map_err(|e| err(format!("{e:?}")))?;
    chart
        .configure_mesh()
        .x_desc("simulated seconds (shaded: faults)")
        .y_desc("offset")
        .draw()
        .map_err(|e| err(format!("{e:?}")))?;
    shade(&mut chart, &t.faults, (0.0, top))?;
    for (i, (node, points)) in t.replicas.iter().enumerate() {
        let color = PALETTE[(i + 2) % PALETTE.len()];
        let leo: Vec<[f64; 2]> = points.iter().map(|p| [p[0], p[1]]).collect();
        let hw: Vec<[f64; 2]> = points.iter().map(|p| [p[0], p[2]]).collect();
        chart
            .draw_series(LineSeries::new(steps(&leo, end, 0.0), color.stroke_width(3)))
            .map_err(|e| err(format!("{e:?}")))?
            .label(format!("{node} LEO"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(3)));
        chart
            .draw_series(LineSeries::new(steps(&hw, end, 0.0), color.mix(0.7).stroke_width(1)))
            .map_err(|e| err(format!("{e:?}")))?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// Each consumer group's lag over simulated time (a line per group), its rebalances (a vertical line and
/// `gen N` at each new generation), and the fault windows shaded.
pub fn group_lag(t: &GroupTimeline) -> Out {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let top = t.groups.values().flat_map(|g| &g.lag).map(|p| p[1]).fold(1.0, f64::max) * 1.3;
        let end = t.end_s.max(1.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Consumer lag and rebalances: {} acks={} min.insync.replicas={} seed {}",
                    t.scenario, t.acks, t.min_insync_replicas, t.seed
                ),
                (FONT, 15),
            )
            .margin(12)
            .y_label_area_size(60)
            .x_label_area_size(35)
            .build_cartesian_2d(0f64..end, 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("simulated seconds (shaded: faults; vertical lines: rebalances)")
            .y_desc("lag (records: high watermark - committed)")
            .draw()
            .map_err(err)?;
        shade(&mut chart, &t.faults, (0.0, top))?;
        for (i, (group, series)) in t.groups.iter().enumerate() {
            let color = PALETTE[(i + 2) % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    series.lag.iter().map(|p| (p[0], p[1])),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{group} lag"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2)));
            chart
                .draw_series(
                    series.rebalances.iter().map(|r| {
                        PathElement::new(vec![(r[0], 0.0), (r[0], top * 0.8)], color.mix(0.6).stroke_width(1))
                    }),
                )
                .map_err(err)?;
            chart
                .draw_series(series.rebalances.iter().enumerate().map(|(k, r)| {
                    let at = top * (0.82 + 0.05 * (k % 3) as f64);
                    Text::new(format!("{group} gen {}", r[1]), (r[0], at), (FONT, 10))
                }))
                .map_err(err)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
