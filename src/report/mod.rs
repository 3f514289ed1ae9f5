//! What nsnet shows people and scripts about the host: `status` (the record
//! against the live kernel, with drift), its renderings (`render`: text,
//! graph as text, DOT or Mermaid), `doctor` (what would break nsnet, with
//! fixes; its IPv6 checks in `doctor6`) and the terminal `style` (colour, progress).

pub mod doctor;
pub mod doctor6;
pub mod forward;
pub mod render;
pub mod shadow;
pub mod status;
pub mod style;
