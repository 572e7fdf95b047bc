//! The opcode table of pickle protocols 0–5, as `Lib/pickletools.py` describes it.
//!
//! Stack effects are recorded the way `pickletools.dis` models them, so that the
//! disassembler can reproduce its MARK bookkeeping and indentation exactly.

/// How an opcode's in-stream argument is encoded (pickletools' `ArgumentDescriptor`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    None,
    Uint1,
    Uint2,
    Int4,
    Uint4,
    Uint8,
    /// `decimalnl_short`: INT, GET, PUT.
    DecimalNlShort,
    /// `decimalnl_long`: LONG.
    DecimalNlLong,
    /// `floatnl`: FLOAT.
    FloatNl,
    Float8,
    Long1,
    Long4,
    /// `stringnl`: STRING, quoted and escaped.
    StringNl,
    /// `stringnl_noescape`: PERSID.
    StringNlNoEscape,
    /// `stringnl_noescape_pair`: GLOBAL, INST.
    StringNlNoEscapePair,
    String1,
    String4,
    Bytes1,
    Bytes4,
    Bytes8,
    ByteArray8,
    /// `unicodestringnl`: UNICODE, raw-unicode-escape.
    UnicodeStringNl,
    UnicodeString1,
    UnicodeString4,
    UnicodeString8,
}

/// Every opcode CPython's unpickler knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    Mark = b'(',
    Stop = b'.',
    Pop = b'0',
    PopMark = b'1',
    Dup = b'2',
    Float = b'F',
    Int = b'I',
    BinInt = b'J',
    BinInt1 = b'K',
    Long = b'L',
    BinInt2 = b'M',
    None = b'N',
    PersId = b'P',
    BinPersId = b'Q',
    Reduce = b'R',
    String = b'S',
    BinString = b'T',
    ShortBinString = b'U',
    Unicode = b'V',
    BinUnicode = b'X',
    Append = b'a',
    Build = b'b',
    Global = b'c',
    Dict = b'd',
    EmptyDict = b'}',
    Appends = b'e',
    Get = b'g',
    BinGet = b'h',
    Inst = b'i',
    LongBinGet = b'j',
    List = b'l',
    EmptyList = b']',
    Obj = b'o',
    Put = b'p',
    BinPut = b'q',
    LongBinPut = b'r',
    SetItem = b's',
    Tuple = b't',
    EmptyTuple = b')',
    SetItems = b'u',
    BinFloat = b'G',
    Proto = 0x80,
    NewObj = 0x81,
    Ext1 = 0x82,
    Ext2 = 0x83,
    Ext4 = 0x84,
    Tuple1 = 0x85,
    Tuple2 = 0x86,
    Tuple3 = 0x87,
    NewTrue = 0x88,
    NewFalse = 0x89,
    Long1 = 0x8a,
    Long4 = 0x8b,
    BinBytes = b'B',
    ShortBinBytes = b'C',
    ShortBinUnicode = 0x8c,
    BinUnicode8 = 0x8d,
    BinBytes8 = 0x8e,
    EmptySet = 0x8f,
    AddItems = 0x90,
    FrozenSet = 0x91,
    NewObjEx = 0x92,
    StackGlobal = 0x93,
    Memoize = 0x94,
    Frame = 0x95,
    ByteArray8 = 0x96,
    NextBuffer = 0x97,
    ReadonlyBuffer = 0x98,
}

/// Static facts about one opcode.
#[derive(Debug, Clone, Copy)]
pub struct OpInfo {
    pub name: &'static str,
    pub arg: ArgKind,
    /// Protocol that introduced the opcode.
    pub proto: u8,
    /// Items popped below the topmost MARK (or from the top when `mark` is false).
    pub pops: u8,
    /// Items pushed.
    pub pushes: u8,
    /// The opcode consumes everything down to and including the topmost MARK.
    pub mark: bool,
}

const fn info(
    name: &'static str,
    arg: ArgKind,
    proto: u8,
    pops: u8,
    pushes: u8,
    mark: bool,
) -> OpInfo {
    OpInfo {
        name,
        arg,
        proto,
        pops,
        pushes,
        mark,
    }
}

impl Opcode {
    /// All opcodes, for table-driven tests and the decoder's lookup table.
    pub const ALL: [Opcode; 68] = {
        use Opcode::*;
        [
            Mark,
            Stop,
            Pop,
            PopMark,
            Dup,
            Float,
            Int,
            BinInt,
            BinInt1,
            Long,
            BinInt2,
            None,
            PersId,
            BinPersId,
            Reduce,
            String,
            BinString,
            ShortBinString,
            Unicode,
            BinUnicode,
            Append,
            Build,
            Global,
            Dict,
            EmptyDict,
            Appends,
            Get,
            BinGet,
            Inst,
            LongBinGet,
            List,
            EmptyList,
            Obj,
            Put,
            BinPut,
            LongBinPut,
            SetItem,
            Tuple,
            EmptyTuple,
            SetItems,
            BinFloat,
            Proto,
            NewObj,
            Ext1,
            Ext2,
            Ext4,
            Tuple1,
            Tuple2,
            Tuple3,
            NewTrue,
            NewFalse,
            Long1,
            Long4,
            BinBytes,
            ShortBinBytes,
            ShortBinUnicode,
            BinUnicode8,
            BinBytes8,
            EmptySet,
            AddItems,
            FrozenSet,
            NewObjEx,
            StackGlobal,
            Memoize,
            Frame,
            ByteArray8,
            NextBuffer,
            ReadonlyBuffer,
        ]
    };

    #[inline]
    pub fn from_byte(b: u8) -> Option<Opcode> {
        TABLE[b as usize]
    }

    #[inline]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Static facts, from a table indexed by opcode byte (on the decoder's hot path).
    #[inline]
    pub fn info(self) -> OpInfo {
        INFO[self as u8 as usize]
    }

    const fn compute_info(self) -> OpInfo {
        use ArgKind as A;
        use Opcode::*;
        match self {
            Mark => info("MARK", A::None, 0, 0, 0, false),
            Stop => info("STOP", A::None, 0, 1, 0, false),
            Pop => info("POP", A::None, 0, 1, 0, false),
            PopMark => info("POP_MARK", A::None, 1, 0, 0, true),
            Dup => info("DUP", A::None, 0, 1, 2, false),
            Float => info("FLOAT", A::FloatNl, 0, 0, 1, false),
            Int => info("INT", A::DecimalNlShort, 0, 0, 1, false),
            BinInt => info("BININT", A::Int4, 1, 0, 1, false),
            BinInt1 => info("BININT1", A::Uint1, 1, 0, 1, false),
            Long => info("LONG", A::DecimalNlLong, 0, 0, 1, false),
            BinInt2 => info("BININT2", A::Uint2, 1, 0, 1, false),
            None => info("NONE", A::None, 0, 0, 1, false),
            PersId => info("PERSID", A::StringNlNoEscape, 0, 0, 1, false),
            BinPersId => info("BINPERSID", A::None, 1, 1, 1, false),
            Reduce => info("REDUCE", A::None, 0, 2, 1, false),
            String => info("STRING", A::StringNl, 0, 0, 1, false),
            BinString => info("BINSTRING", A::String4, 1, 0, 1, false),
            ShortBinString => info("SHORT_BINSTRING", A::String1, 1, 0, 1, false),
            Unicode => info("UNICODE", A::UnicodeStringNl, 0, 0, 1, false),
            BinUnicode => info("BINUNICODE", A::UnicodeString4, 1, 0, 1, false),
            Append => info("APPEND", A::None, 0, 2, 1, false),
            Build => info("BUILD", A::None, 0, 2, 1, false),
            Global => info("GLOBAL", A::StringNlNoEscapePair, 0, 0, 1, false),
            Dict => info("DICT", A::None, 0, 0, 1, true),
            EmptyDict => info("EMPTY_DICT", A::None, 1, 0, 1, false),
            Appends => info("APPENDS", A::None, 1, 1, 1, true),
            Get => info("GET", A::DecimalNlShort, 0, 0, 1, false),
            BinGet => info("BINGET", A::Uint1, 1, 0, 1, false),
            Inst => info("INST", A::StringNlNoEscapePair, 0, 0, 1, true),
            LongBinGet => info("LONG_BINGET", A::Uint4, 1, 0, 1, false),
            List => info("LIST", A::None, 0, 0, 1, true),
            EmptyList => info("EMPTY_LIST", A::None, 1, 0, 1, false),
            Obj => info("OBJ", A::None, 1, 0, 1, true),
            Put => info("PUT", A::DecimalNlShort, 0, 0, 0, false),
            BinPut => info("BINPUT", A::Uint1, 1, 0, 0, false),
            LongBinPut => info("LONG_BINPUT", A::Uint4, 1, 0, 0, false),
            SetItem => info("SETITEM", A::None, 0, 3, 1, false),
            Tuple => info("TUPLE", A::None, 0, 0, 1, true),
            EmptyTuple => info("EMPTY_TUPLE", A::None, 1, 0, 1, false),
            SetItems => info("SETITEMS", A::None, 1, 1, 1, true),
            BinFloat => info("BINFLOAT", A::Float8, 1, 0, 1, false),
            Proto => info("PROTO", A::Uint1, 2, 0, 0, false),
            NewObj => info("NEWOBJ", A::None, 2, 2, 1, false),
            Ext1 => info("EXT1", A::Uint1, 2, 0, 1, false),
            Ext2 => info("EXT2", A::Uint2, 2, 0, 1, false),
            Ext4 => info("EXT4", A::Int4, 2, 0, 1, false),
            Tuple1 => info("TUPLE1", A::None, 2, 1, 1, false),
            Tuple2 => info("TUPLE2", A::None, 2, 2, 1, false),
            Tuple3 => info("TUPLE3", A::None, 2, 3, 1, false),
            NewTrue => info("NEWTRUE", A::None, 2, 0, 1, false),
            NewFalse => info("NEWFALSE", A::None, 2, 0, 1, false),
            Long1 => info("LONG1", A::Long1, 2, 0, 1, false),
            Long4 => info("LONG4", A::Long4, 2, 0, 1, false),
            BinBytes => info("BINBYTES", A::Bytes4, 3, 0, 1, false),
            ShortBinBytes => info("SHORT_BINBYTES", A::Bytes1, 3, 0, 1, false),
            ShortBinUnicode => info("SHORT_BINUNICODE", A::UnicodeString1, 4, 0, 1, false),
            BinUnicode8 => info("BINUNICODE8", A::UnicodeString8, 4, 0, 1, false),
            BinBytes8 => info("BINBYTES8", A::Bytes8, 4, 0, 1, false),
            EmptySet => info("EMPTY_SET", A::None, 4, 0, 1, false),
            AddItems => info("ADDITEMS", A::None, 4, 1, 1, true),
            FrozenSet => info("FROZENSET", A::None, 4, 0, 1, true),
            NewObjEx => info("NEWOBJ_EX", A::None, 4, 3, 1, false),
            StackGlobal => info("STACK_GLOBAL", A::None, 4, 2, 1, false),
            Memoize => info("MEMOIZE", A::None, 4, 0, 0, false),
            Frame => info("FRAME", A::Uint8, 4, 0, 0, false),
            ByteArray8 => info("BYTEARRAY8", A::ByteArray8, 5, 0, 1, false),
            NextBuffer => info("NEXT_BUFFER", A::None, 5, 0, 1, false),
            ReadonlyBuffer => info("READONLY_BUFFER", A::None, 5, 1, 1, false),
        }
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }
}

const INFO: [OpInfo; 256] = {
    let mut t = [info("?", ArgKind::None, 0, 0, 0, false); 256];
    let mut i = 0;
    while i < Opcode::ALL.len() {
        let op = Opcode::ALL[i];
        t[op as u8 as usize] = op.compute_info();
        i += 1;
    }
    t
};

const TABLE: [Option<Opcode>; 256] = {
    let mut t: [Option<Opcode>; 256] = [None; 256];
    let mut i = 0;
    while i < Opcode::ALL.len() {
        let op = Opcode::ALL[i];
        t[op as u8 as usize] = Some(op);
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_every_code() {
        for op in Opcode::ALL {
            assert_eq!(Opcode::from_byte(op.code()), Some(op));
        }
        let known = (0..=255u8)
            .filter(|b| Opcode::from_byte(*b).is_some())
            .count();
        assert_eq!(known, Opcode::ALL.len());
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Opcode::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Opcode::ALL.len());
    }
}
