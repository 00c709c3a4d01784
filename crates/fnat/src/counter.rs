//! One declaration per set of counters: [`counter_set!`](crate::counter_set) turns a list of
//! `Variant = "name": "help"` lines into the enum, its stable names and help texts, and a
//! fixed array of counts indexed by it. The core's drop reasons and the dataplane's
//! counters are both declared with it, so a counter is named once and the same name and
//! help reach `rvsip stats`, the JSON listings and any exporter.

#[doc(hidden)]
pub use serde as __serde;

/// Declares a set of counters.
///
/// ```
/// fnat::counter_set! {
///     /// Why a widget was refused.
///     pub enum Refusal in Refusals {
///         TooBig = "too_big": "The widget was larger than allowed.",
///         TooLate = "too_late": "The widget came after closing time.",
///     }
/// }
/// let mut r = Refusals::default();
/// r.inc(Refusal::TooLate);
/// assert_eq!(r.get(Refusal::TooLate), 1);
/// assert_eq!(Refusal::TooLate.name(), "too_late");
/// assert_eq!(Refusal::from_name("too_big"), Some(Refusal::TooBig));
/// ```
///
/// The enum gets `COUNT`, `ALL`, `name`, `help`, `from_name`, `Display` and serde as its
/// name; the count set (`in Refusals`) is a `[u64; COUNT]` with `inc`, `add_n`, `get`,
/// `add`, `zero`, `nonzero` and serialises as a map of its non-zero counts by name.
#[macro_export]
macro_rules! counter_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident in $set:ident {
            $( $var:ident = $key:literal : $help:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        $vis enum $name {
            $( #[doc = $help] $var, )+
        }

        impl $name {
            /// How many there are.
            pub const COUNT: usize = [$($key),+].len();
            /// Every one, in declaration order (= discriminant order).
            pub const ALL: [$name; $name::COUNT] = [$($name::$var),+];

            /// The stable snake_case name used in counters, JSON, logs and the CLIs.
            pub const fn name(self) -> &'static str {
                match self { $($name::$var => $key),+ }
            }

            /// One sentence saying what is counted (for operators and exporters).
            pub const fn help(self) -> &'static str {
                match self { $($name::$var => $help),+ }
            }

            /// The one with this name.
            pub fn from_name(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|r| r.name() == s)
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl $crate::counter::__serde::Serialize for $name {
            fn serialize<S: $crate::counter::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> $crate::counter::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::counter::__serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = <::std::string::String as $crate::counter::__serde::Deserialize>::deserialize(d)?;
                $name::from_name(&s).ok_or_else(|| {
                    <D::Error as $crate::counter::__serde::de::Error>::custom(format!("unknown {}: {s:?}", stringify!($name)))
                })
            }
        }

        #[doc = concat!("Counts by [`", stringify!($name), "`]: plain integers owned by one worker.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis struct $set([u64; $name::COUNT]);

        impl Default for $set {
            fn default() -> $set {
                $set([0; $name::COUNT])
            }
        }

        impl $set {
            /// Counts one.
            #[inline]
            pub fn inc(&mut self, c: $name) {
                self.0[c as usize] += 1;
            }

            /// Counts `n`.
            #[inline]
            pub fn add_n(&mut self, c: $name, n: u64) {
                self.0[c as usize] += n;
            }

            /// The count of one.
            #[inline]
            pub fn get(&self, c: $name) -> u64 {
                self.0[c as usize]
            }

            /// Adds another set (another worker's) into this one.
            pub fn add(&mut self, o: &$set) {
                for (a, b) in self.0.iter_mut().zip(o.0) {
                    *a += b;
                }
            }

            /// Sets every count to zero.
            pub fn zero(&mut self) {
                self.0 = [0; $name::COUNT];
            }

            /// The non-zero counts, in declaration order.
            pub fn nonzero(&self) -> impl Iterator<Item = ($name, u64)> + '_ {
                $name::ALL.iter().map(|c| (*c, self.0[*c as usize])).filter(|(_, n)| *n > 0)
            }
        }

        impl $crate::counter::__serde::Serialize for $set {
            fn serialize<S: $crate::counter::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use $crate::counter::__serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                for (c, n) in self.nonzero() {
                    m.serialize_entry(c.name(), &n)?;
                }
                m.end()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    counter_set! {
        /// Test set.
        pub enum Colour in Colours {
            Red = "red": "Red things.",
            Green = "green": "Green things.",
            Blue = "blue": "Blue things.",
        }
    }

    #[test]
    fn declared_once_everything_follows() {
        assert_eq!(Colour::COUNT, 3);
        for (i, c) in Colour::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert_eq!(Colour::from_name(c.name()), Some(*c));
            assert!(!c.help().is_empty());
        }
        let mut a = Colours::default();
        a.inc(Colour::Blue);
        a.add_n(Colour::Red, 3);
        let mut b = Colours::default();
        b.inc(Colour::Blue);
        a.add(&b);
        assert_eq!(a.get(Colour::Blue), 2);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"red":3,"blue":2}"#);
        assert_eq!(serde_json::to_string(&Colour::Green).unwrap(), r#""green""#);
        assert_eq!(serde_json::from_str::<Colour>(r#""red""#).unwrap(), Colour::Red);
        assert!(serde_json::from_str::<Colour>(r#""pink""#).is_err());
        a.zero();
        assert_eq!(a.nonzero().count(), 0);
    }
}
