//! Colours and symbols: one place that knows how many colours the terminal has.
//!
//! Meaning never rides on colour alone: every regime also has a symbol and the heatmap
//! also has a shade ramp, so NO_COLOR and monochrome terminals lose nothing but hue.

use super::regime::Regime;
use ratatui::style::{Color, Modifier, Style};

/// How many colours the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// `NO_COLOR` is set (https://no-color.org): modifiers only.
    None,
    /// The 16 ANSI colours, whatever the user's palette maps them to.
    Ansi16,
    /// The xterm 256-colour palette.
    Ansi256,
    /// 24-bit colour.
    TrueColor,
}

impl ColorMode {
    /// Detects the mode from the environment: `NO_COLOR` (any non-empty value) wins, then
    /// `COLORTERM=truecolor|24bit`, then a `TERM` naming 256 colours; 16 colours otherwise,
    /// which every terminal reached over SSH can show.
    pub fn detect(var: impl Fn(&str) -> Option<String>) -> Self {
        if var("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return ColorMode::None;
        }
        let colorterm = var("COLORTERM").unwrap_or_default().to_ascii_lowercase();
        if colorterm == "truecolor" || colorterm == "24bit" {
            return ColorMode::TrueColor;
        }
        let term = var("TERM").unwrap_or_default();
        if term.contains("256") {
            ColorMode::Ansi256
        } else {
            ColorMode::Ansi16
        }
    }
}

/// Glyphs of the heatmap, weakest to strongest: they carry the level without colour.
pub const SHADES: [char; 5] = ['·', '░', '▒', '▓', '█'];

/// Eighth blocks for sparklines and bars, empty to full.
pub const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Every style the screens use, derived from one `ColorMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub mode: ColorMode,
}

impl Theme {
    pub fn new(mode: ColorMode) -> Self {
        Self { mode }
    }

    /// The theme for this process's environment.
    pub fn detect() -> Self {
        Self::new(ColorMode::detect(|k| std::env::var(k).ok()))
    }

    fn pick(&self, c16: Color, c256: u8, rgb: (u8, u8, u8)) -> Style {
        match self.mode {
            ColorMode::None => Style::default(),
            ColorMode::Ansi16 => Style::default().fg(c16),
            ColorMode::Ansi256 => Style::default().fg(Color::Indexed(c256)),
            ColorMode::TrueColor => Style::default().fg(Color::Rgb(rgb.0, rgb.1, rgb.2)),
        }
    }

    /// The colour of a regime (the symbol is `Regime::symbol`).
    pub fn regime(&self, r: Regime) -> Style {
        match r {
            Regime::Vanishing => self.pick(Color::Blue, 33, (80, 150, 255)),
            Regime::Healthy => self.pick(Color::Green, 35, (80, 200, 120)),
            Regime::Exploding => self.pick(Color::Red, 196, (255, 80, 80)),
            Regime::Unknown => self.dim(),
        }
    }

    /// Heat ramp for a level in [0, 1]: a shade glyph and its colour (blue → red).
    pub fn heat(&self, level: f64) -> (char, Style) {
        let level = if level.is_finite() {
            level.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let glyph = SHADES[((level * SHADES.len() as f64) as usize).min(SHADES.len() - 1)];
        let style = match self.mode {
            ColorMode::None => Style::default(),
            ColorMode::Ansi16 => {
                const RAMP: [Color; 5] = [
                    Color::Blue,
                    Color::Cyan,
                    Color::Green,
                    Color::Yellow,
                    Color::Red,
                ];
                Style::default().fg(RAMP[((level * 5.0) as usize).min(4)])
            }
            ColorMode::Ansi256 => {
                // A blue→cyan→green→yellow→red walk through the 6×6×6 cube.
                const RAMP: [u8; 10] = [19, 25, 31, 37, 43, 77, 148, 184, 208, 196];
                Style::default().fg(Color::Indexed(RAMP[((level * 10.0) as usize).min(9)]))
            }
            ColorMode::TrueColor => {
                let (r, g, b) = turbo(level);
                Style::default().fg(Color::Rgb(r, g, b))
            }
        };
        (glyph, style)
    }

    /// Titles and the selected panel's border.
    pub fn focus(&self) -> Style {
        self.pick(Color::Cyan, 44, (90, 200, 230))
            .add_modifier(Modifier::BOLD)
    }

    pub fn border(&self) -> Style {
        match self.mode {
            ColorMode::None => Style::default(),
            _ => self.pick(Color::DarkGray, 240, (100, 100, 110)),
        }
    }

    pub fn dim(&self) -> Style {
        match self.mode {
            ColorMode::None => Style::default(),
            _ => self.pick(Color::DarkGray, 244, (140, 140, 150)),
        }
    }

    pub fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// The title bar across the top of every screen.
    pub fn bar(&self) -> Style {
        match self.mode {
            ColorMode::None => Style::default().add_modifier(Modifier::REVERSED),
            ColorMode::Ansi16 => Style::default().fg(Color::Black).bg(Color::Cyan),
            ColorMode::Ansi256 => Style::default()
                .fg(Color::Indexed(16))
                .bg(Color::Indexed(38)),
            ColorMode::TrueColor => Style::default()
                .fg(Color::Rgb(10, 20, 30))
                .bg(Color::Rgb(90, 180, 220)),
        }
    }

    /// The selected row of a list.
    pub fn selected(&self) -> Style {
        match self.mode {
            ColorMode::None => Style::default().add_modifier(Modifier::REVERSED),
            _ => self
                .pick(Color::Black, 16, (10, 20, 30))
                .bg(match self.mode {
                    ColorMode::Ansi16 => Color::Cyan,
                    ColorMode::Ansi256 => Color::Indexed(31),
                    _ => Color::Rgb(60, 130, 170),
                }),
        }
    }

    pub fn ok(&self) -> Style {
        self.pick(Color::Green, 35, (80, 200, 120))
    }

    pub fn warn(&self) -> Style {
        self.pick(Color::Yellow, 178, (230, 190, 60))
    }

    pub fn error(&self) -> Style {
        self.pick(Color::Red, 196, (255, 80, 80))
            .add_modifier(Modifier::BOLD)
    }

    /// The training series of a chart.
    pub fn train_series(&self) -> Style {
        self.pick(Color::Yellow, 220, (240, 200, 80))
    }

    /// The held-out series of a chart.
    pub fn test_series(&self) -> Style {
        self.pick(Color::Magenta, 170, (210, 110, 230))
    }

    /// The mean-field theory line over measured profiles.
    pub fn theory(&self) -> Style {
        self.pick(Color::LightMagenta, 207, (255, 120, 210))
            .add_modifier(Modifier::BOLD)
    }

    /// The colour of the `i`-th entry on the Compare screen (its symbol is in
    /// `ui::compare::GLYPHS`): the Okabe–Ito palette, told apart by colour-blind readers.
    pub fn series(&self, i: usize) -> Style {
        const C16: [Color; 8] = [
            Color::Yellow,
            Color::Cyan,
            Color::Green,
            Color::LightRed,
            Color::LightBlue,
            Color::Magenta,
            Color::White,
            Color::LightYellow,
        ];
        const C256: [u8; 8] = [214, 117, 36, 166, 33, 175, 250, 227];
        const RGB: [(u8, u8, u8); 8] = [
            (230, 159, 0),
            (86, 180, 233),
            (0, 158, 115),
            (213, 94, 0),
            (0, 114, 178),
            (204, 121, 167),
            (200, 200, 200),
            (240, 228, 66),
        ];
        let i = i % 8;
        self.pick(C16[i], C256[i], RGB[i])
    }
}

/// A compact approximation of the "turbo" colour map (Mikhailov 2019), legible on dark
/// and light backgrounds.
fn turbo(t: f64) -> (u8, u8, u8) {
    const STOPS: [(f64, f64, f64); 6] = [
        (48.0, 18.0, 59.0),
        (70.0, 130.0, 248.0),
        (27.0, 229.0, 181.0),
        (164.0, 252.0, 60.0),
        (251.0, 185.0, 56.0),
        (180.0, 30.0, 10.0),
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn no_color_wins_over_everything() {
        let mode = ColorMode::detect(env(&[
            ("NO_COLOR", "1"),
            ("COLORTERM", "truecolor"),
            ("TERM", "xterm-256color"),
        ]));
        assert_eq!(mode, ColorMode::None);
    }

    #[test]
    fn empty_no_color_is_ignored_as_the_convention_says() {
        assert_eq!(
            ColorMode::detect(env(&[("NO_COLOR", ""), ("TERM", "xterm-256color")])),
            ColorMode::Ansi256
        );
    }

    #[test]
    fn colorterm_then_term_decide_the_depth() {
        assert_eq!(
            ColorMode::detect(env(&[("COLORTERM", "24bit")])),
            ColorMode::TrueColor
        );
        assert_eq!(
            ColorMode::detect(env(&[("TERM", "screen-256color")])),
            ColorMode::Ansi256
        );
        assert_eq!(
            ColorMode::detect(env(&[("TERM", "xterm")])),
            ColorMode::Ansi16
        );
        assert_eq!(ColorMode::detect(env(&[])), ColorMode::Ansi16);
    }

    #[test]
    fn no_color_styles_carry_no_colour() {
        let t = Theme::new(ColorMode::None);
        for r in [Regime::Vanishing, Regime::Healthy, Regime::Exploding] {
            assert_eq!(t.regime(r).fg, None);
        }
        let (glyph, style) = t.heat(1.0);
        assert_eq!((glyph, style.fg), ('█', None));
        assert_eq!(t.heat(0.0).0, '·');
    }

    #[test]
    fn each_mode_gives_regimes_distinct_colours() {
        for mode in [ColorMode::Ansi16, ColorMode::Ansi256, ColorMode::TrueColor] {
            let t = Theme::new(mode);
            let (v, h, e) = (
                t.regime(Regime::Vanishing).fg,
                t.regime(Regime::Healthy).fg,
                t.regime(Regime::Exploding).fg,
            );
            assert!(v.is_some() && v != h && h != e && v != e, "{mode:?}");
        }
    }
}
