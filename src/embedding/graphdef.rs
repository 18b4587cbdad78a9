//! The few TensorFlow protobuf messages needed to read a frozen `GraphDef` (`.pb`), declared by hand
//! for prost (no protoc, no TensorFlow), and typed access to its float constants.
//!
//! Only the fields visage reads are declared; prost skips the rest. This module knows nothing of
//! FaceNet's layout; `weights` maps constants to the network.

use std::collections::HashMap;

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct GraphDef {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeDef>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeDef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub op: String,
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    #[prost(map = "string, message", tag = "5")]
    pub attr: HashMap<String, AttrValue>,
}

/// `AttrValue` is a oneof on the wire; reading it as optional fields is equivalent.
#[derive(Clone, PartialEq, Message)]
pub struct AttrValue {
    #[prost(message, optional, tag = "1")]
    pub list: Option<ListValue>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub s: Option<Vec<u8>>,
    #[prost(float, optional, tag = "4")]
    pub f: Option<f32>,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListValue {
    #[prost(int64, repeated, tag = "3")]
    pub i: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Dim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

/// TensorFlow's `DT_FLOAT`.
const DT_FLOAT: i32 = 1;

/// The messages carry their reason and no variant has a `source`, so a printed chain (`{:#}`)
/// says it once.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("not a TensorFlow GraphDef: {0}")]
    Decode(prost::DecodeError),
    #[error("the graph has no node `{0}`")]
    Missing(String),
    #[error("node `{name}`: {why}")]
    Bad { name: String, why: String },
}

impl From<prost::DecodeError> for GraphError {
    fn from(e: prost::DecodeError) -> Self {
        GraphError::Decode(e)
    }
}

/// A decoded graph, with its nodes by name.
pub struct Graph {
    nodes: HashMap<String, NodeDef>,
}

/// A float constant: its shape and values in TensorFlow's (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Graph {
    pub fn decode(bytes: &[u8]) -> Result<Self, GraphError> {
        let graph = GraphDef::decode(bytes)?;
        let nodes = graph
            .node
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        Ok(Graph { nodes })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, name: &str) -> Result<&NodeDef, GraphError> {
        self.nodes
            .get(name)
            .ok_or_else(|| GraphError::Missing(name.to_string()))
    }

    /// Names of all nodes with this op.
    pub fn names_of_op<'a>(&'a self, op: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.nodes
            .values()
            .filter(move |n| n.op == op)
            .map(|n| n.name.as_str())
    }

    /// The float constant called `name`.
    pub fn constant(&self, name: &str) -> Result<Constant, GraphError> {
        let node = self.node(name)?;
        let bad = |why: String| GraphError::Bad {
            name: name.to_string(),
            why,
        };
        if node.op != "Const" {
            return Err(bad(format!("is a {} node, not a constant", node.op)));
        }
        let tensor = node
            .attr
            .get("value")
            .and_then(|a| a.tensor.as_ref())
            .ok_or_else(|| bad("constant without a tensor value".into()))?;
        if tensor.dtype != DT_FLOAT {
            return Err(bad(format!(
                "holds TensorFlow dtype {}, not float32",
                tensor.dtype
            )));
        }
        let shape: Vec<usize> = tensor
            .tensor_shape
            .as_ref()
            .map(|s| s.dim.iter().map(|d| d.size.max(0) as usize).collect())
            .unwrap_or_default();
        let count: usize = shape.iter().product();
        let values: Vec<f32> = if !tensor.tensor_content.is_empty() {
            if tensor.tensor_content.len() != count * 4 {
                return Err(bad(format!(
                    "{} bytes of content for shape {shape:?}",
                    tensor.tensor_content.len()
                )));
            }
            tensor
                .tensor_content
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else if tensor.float_val.len() == count {
            tensor.float_val.clone()
        } else if tensor.float_val.len() == 1 {
            // TensorFlow repeats a single listed value over the whole shape.
            vec![tensor.float_val[0]; count]
        } else {
            return Err(bad(format!(
                "{} values for shape {shape:?}",
                tensor.float_val.len()
            )));
        };
        Ok(Constant { shape, values })
    }

    /// An integer-list attribute of a node (for example a convolution's `strides`).
    pub fn int_list(&self, name: &str, attr: &str) -> Result<Vec<i64>, GraphError> {
        self.node(name)?
            .attr
            .get(attr)
            .and_then(|a| a.list.as_ref())
            .map(|l| l.i.clone())
            .ok_or_else(|| GraphError::Bad {
                name: name.to_string(),
                why: format!("has no integer list `{attr}`"),
            })
    }

    /// A string attribute of a node (for example a convolution's `padding`).
    pub fn string(&self, name: &str, attr: &str) -> Result<String, GraphError> {
        self.node(name)?
            .attr
            .get(attr)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .ok_or_else(|| GraphError::Bad {
                name: name.to_string(),
                why: format!("has no string `{attr}`"),
            })
    }

    /// A float attribute of a node (for example a batch norm's `epsilon`).
    pub fn float(&self, name: &str, attr: &str) -> Result<f32, GraphError> {
        self.node(name)?
            .attr
            .get(attr)
            .and_then(|a| a.f)
            .ok_or_else(|| GraphError::Bad {
                name: name.to_string(),
                why: format!("has no float `{attr}`"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant_node(name: &str, shape: &[i64], content: &[f32], listed: &[f32]) -> NodeDef {
        let tensor = TensorProto {
            dtype: DT_FLOAT,
            tensor_shape: Some(TensorShapeProto {
                dim: shape.iter().map(|&size| Dim { size }).collect(),
            }),
            tensor_content: content.iter().flat_map(|v| v.to_le_bytes()).collect(),
            float_val: listed.to_vec(),
        };
        NodeDef {
            name: name.into(),
            op: "Const".into(),
            input: vec![],
            attr: HashMap::from([(
                "value".to_string(),
                AttrValue {
                    tensor: Some(tensor),
                    ..Default::default()
                },
            )]),
        }
    }

    #[test]
    fn reads_packed_listed_and_broadcast_constants_back() {
        let graph = GraphDef {
            node: vec![
                constant_node("packed", &[2, 2], &[1.0, 2.0, 3.0, 4.0], &[]),
                constant_node("listed", &[2], &[], &[5.0, 6.0]),
                constant_node("filled", &[3], &[], &[0.5]),
                constant_node("short", &[2, 2], &[1.0], &[]),
            ],
        };
        let g = Graph::decode(&graph.encode_to_vec()).unwrap();
        assert_eq!(g.len(), 4);
        let c = g.constant("packed").unwrap();
        assert_eq!((c.shape, c.values), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(g.constant("listed").unwrap().values, vec![5.0, 6.0]);
        assert_eq!(g.constant("filled").unwrap().values, vec![0.5; 3]);
        let err = g.constant("short").unwrap_err().to_string();
        assert!(err.contains("short") && err.contains("4 bytes"), "{err}");
        let err = g.constant("nope").unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        assert!(Graph::decode(b"\xff\xff\xff").is_err());
    }
}
