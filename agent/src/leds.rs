//! Status LED backends (what the LEDs show, [`crate::proto::LedPattern`], is
//! decided by the node role's driver, `node::lights`). Behind a small trait with a no-op backend, a simulated backend
//! whose state `/healthz` and `/metrics` show, and real GPIO through `rpi-pal`,
//! compiled only for Linux aarch64 with the `gpio` feature. A Pi with no LEDs
//! wired, or any other machine, runs with the simulated backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Led {
    Green,
    Red,
}

/// Something that can switch the two status LEDs.
pub trait Leds: Send + Sync {
    fn set(&self, led: Led, on: bool);
    /// What the LEDs show now (for `/healthz` and the dashboard).
    fn state(&self) -> LedState;
}

/// Snapshot of both LEDs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedState {
    pub green: bool,
    pub red: bool,
}

/// LEDs that do nothing and always read off.
#[derive(Debug, Default)]
pub struct NoLeds;

impl Leds for NoLeds {
    fn set(&self, _led: Led, _on: bool) {}
    fn state(&self) -> LedState {
        LedState::default()
    }
}

/// LEDs that only remember their state.
#[derive(Debug, Default, Clone)]
pub struct SimulatedLeds {
    green: Arc<AtomicBool>,
    red: Arc<AtomicBool>,
}

impl Leds for SimulatedLeds {
    fn set(&self, led: Led, on: bool) {
        match led {
            Led::Green => self.green.store(on, Ordering::Relaxed),
            Led::Red => self.red.store(on, Ordering::Relaxed),
        }
    }
    fn state(&self) -> LedState {
        LedState {
            green: self.green.load(Ordering::Relaxed),
            red: self.red.load(Ordering::Relaxed),
        }
    }
}

/// Sets both LEDs from the broker connection state alone (green on, or red on).
pub fn show_connected(leds: &dyn Leds, connected: bool) {
    leds.set(Led::Green, connected);
    leds.set(Led::Red, !connected);
}

/// The backend for the configured pins: real GPIO where compiled in and
/// usable, otherwise simulated (with a warning when pins were asked for).
pub fn from_pins(green: Option<u8>, red: Option<u8>) -> Arc<dyn Leds> {
    if green.is_none() && red.is_none() {
        return Arc::new(SimulatedLeds::default());
    }
    #[cfg(all(target_os = "linux", target_arch = "aarch64", feature = "gpio"))]
    match gpio::GpioLeds::new(green, red) {
        Ok(leds) => return Arc::new(leds),
        Err(e) => tracing::warn!(error = %e, "cannot drive the LED pins; LEDs simulated"),
    }
    #[cfg(not(all(target_os = "linux", target_arch = "aarch64", feature = "gpio")))]
    tracing::warn!("built without GPIO support (feature `gpio` on Linux aarch64); LEDs simulated");
    Arc::new(SimulatedLeds::default())
}

#[cfg(all(target_os = "linux", target_arch = "aarch64", feature = "gpio"))]
mod gpio {
    use std::sync::Mutex;

    use rpi_pal::gpio::{Gpio, OutputPin};

    use super::{Led, LedState, Leds, SimulatedLeds};

    /// LEDs on GPIO pins (BCM numbering); an unset pin is simulated.
    pub struct GpioLeds {
        green: Option<Mutex<OutputPin>>,
        red: Option<Mutex<OutputPin>>,
        shown: SimulatedLeds,
    }

    impl GpioLeds {
        pub fn new(green: Option<u8>, red: Option<u8>) -> Result<Self, rpi_pal::gpio::Error> {
            let gpio = Gpio::new()?;
            let pin = |n: Option<u8>| -> Result<Option<Mutex<OutputPin>>, rpi_pal::gpio::Error> {
                n.map(|n| Ok(Mutex::new(gpio.get(n)?.into_output_low())))
                    .transpose()
            };
            Ok(Self {
                green: pin(green)?,
                red: pin(red)?,
                shown: SimulatedLeds::default(),
            })
        }
    }

    impl Leds for GpioLeds {
        fn set(&self, led: Led, on: bool) {
            self.shown.set(led, on);
            let pin = match led {
                Led::Green => &self.green,
                Led::Red => &self.red,
            };
            if let Some(pin) = pin {
                let mut pin = pin.lock().unwrap_or_else(|p| p.into_inner());
                if on { pin.set_high() } else { pin.set_low() }
            }
        }
        fn state(&self) -> LedState {
            self.shown.state()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_leds_follow_the_connection() {
        let leds = SimulatedLeds::default();
        show_connected(&leds, true);
        assert_eq!(
            leds.state(),
            LedState {
                green: true,
                red: false
            }
        );
        show_connected(&leds, false);
        assert_eq!(
            leds.state(),
            LedState {
                green: false,
                red: true
            }
        );
        assert_eq!(NoLeds.state(), LedState::default());
    }
}
