using System.Buffers;
using MessagePack;

namespace SecureChannels.Protocol.Wire;

/// <summary>
/// Writes the canonical MessagePack subset (docs/protocol.md, "Canonical encoding"): arrays, unsigned
/// integers in their shortest form, byte strings (bin), UTF-8 strings (str), nil, and string-keyed maps whose
/// keys the caller passes in ascending ordinal order. One value has exactly one encoding.
/// </summary>
public ref struct CanonicalWriter
{
    private readonly ArrayBufferWriter<byte> _buffer;
    private MessagePackWriter _writer;

    /// <summary>Starts an empty encoding.</summary>
    public CanonicalWriter()
    {
        _buffer = new ArrayBufferWriter<byte>();
        _writer = new MessagePackWriter(_buffer) { OldSpec = false };
    }

    /// <summary>Writes an array header of <paramref name="count"/> elements.</summary>
    public void WriteArray(int count)
    {
        _writer.WriteArrayHeader(count);
    }

    /// <summary>Writes a map header of <paramref name="count"/> entries.</summary>
    public void WriteMap(int count)
    {
        _writer.WriteMapHeader(count);
    }

    /// <summary>Writes an unsigned integer in its shortest form.</summary>
    public void WriteUnsigned(ulong value)
    {
        _writer.Write(value);
    }

    /// <summary>Writes a byte string.</summary>
    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        _writer.Write(value);
    }

    /// <summary>Writes a UTF-8 string.</summary>
    public void WriteText(string value)
    {
        _writer.Write(value);
    }

    /// <summary>Writes nil (an absent optional field).</summary>
    public void WriteNil()
    {
        _writer.WriteNil();
    }

    /// <summary>Writes bytes that are already a canonical encoding (a nested signed structure).</summary>
    public void WriteRaw(ReadOnlySpan<byte> encoded)
    {
        _writer.WriteRaw(encoded);
    }

    /// <summary>The encoding written so far.</summary>
    public byte[] ToArray()
    {
        _writer.Flush();
        return _buffer.WrittenSpan.ToArray();
    }
}
