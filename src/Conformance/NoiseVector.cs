using System.Collections.Immutable;
using System.Text.Json;

namespace SecureChannels.Conformance;

/// <summary>One message of a test vector: what the sender writes and the bytes that must result.</summary>
public sealed record NoiseVectorMessage(byte[] Payload, byte[] Ciphertext);

/// <summary>
/// One community Noise test vector, read from the cacophony/snow format or the older noise-c format
/// (whose fallback vectors start with an IK message the responder must fail to read).
/// </summary>
public sealed record NoiseVector
{
    /// <summary>The protocol name the vector claims.</summary>
    public required string ProtocolName { get; init; }

    /// <summary>True for a noise-c fallback vector: message 0 is IK, then both sides switch to the named fallback protocol.</summary>
    public bool Fallback { get; init; }

    public byte[] InitiatorPrologue { get; init; } = [];

    public byte[]? InitiatorStatic { get; init; }

    public byte[]? InitiatorEphemeral { get; init; }

    public byte[]? InitiatorRemoteStatic { get; init; }

    public ImmutableArray<byte[]> InitiatorPsks { get; init; } = [];

    public byte[] ResponderPrologue { get; init; } = [];

    public byte[]? ResponderStatic { get; init; }

    public byte[]? ResponderEphemeral { get; init; }

    public byte[]? ResponderRemoteStatic { get; init; }

    public ImmutableArray<byte[]> ResponderPsks { get; init; } = [];

    /// <summary>The final handshake hash, when the file gives it.</summary>
    public byte[]? HandshakeHash { get; init; }

    public ImmutableArray<NoiseVectorMessage> Messages { get; init; } = [];

    /// <summary>Reads every vector of a file (<c>{"vectors": [...]}</c>), in either format.</summary>
    /// <exception cref="FormatException">The file is not a vector file.</exception>
    public static ImmutableArray<NoiseVector> ReadFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Read(stream);
    }

    /// <summary>Reads every vector of a vector file's contents.</summary>
    /// <exception cref="FormatException">The content is not a vector file.</exception>
    public static ImmutableArray<NoiseVector> Read(Stream json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            if (!document.RootElement.TryGetProperty("vectors", out var vectors) || vectors.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException("A vector file is an object with a 'vectors' array.");
            }

            return [.. vectors.EnumerateArray().Select(FromJson)];
        }
        catch (JsonException e)
        {
            throw new FormatException($"Not a vector file: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new FormatException($"A vector has a field of the wrong type: {e.Message}", e);
        }
    }

    private static NoiseVector FromJson(JsonElement v)
    {
        // noise-c names the protocol "name" and gives one obsolete-scheme PSK as a string.
        var isNoiseC = v.TryGetProperty("name", out var noiseCName);
        return new NoiseVector
        {
            ProtocolName = (isNoiseC ? noiseCName : v.GetProperty("protocol_name")).GetString() ?? throw new FormatException("A vector has no protocol name."),
            Fallback = v.TryGetProperty("fallback", out var fallback) && fallback.ValueKind == JsonValueKind.True,
            InitiatorPrologue = Hex(v, "init_prologue") ?? [],
            InitiatorStatic = Hex(v, "init_static"),
            InitiatorEphemeral = Hex(v, "init_ephemeral"),
            InitiatorRemoteStatic = Hex(v, "init_remote_static"),
            InitiatorPsks = HexList(v, "init_psks"),
            ResponderPrologue = Hex(v, "resp_prologue") ?? [],
            ResponderStatic = Hex(v, "resp_static"),
            ResponderEphemeral = Hex(v, "resp_ephemeral"),
            ResponderRemoteStatic = Hex(v, "resp_remote_static"),
            ResponderPsks = HexList(v, "resp_psks"),
            HandshakeHash = Hex(v, "handshake_hash"),
            Messages = [.. v.GetProperty("messages").EnumerateArray().Select(m => new NoiseVectorMessage(Hex(m, "payload") ?? [], Hex(m, "ciphertext") ?? []))],
        };
    }

    private static byte[]? Hex(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.GetString() is { } text ? Convert.FromHexString(text) : null;

    private static ImmutableArray<byte[]> HexList(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? [.. value.EnumerateArray().Select(p => Convert.FromHexString(p.GetString() ?? string.Empty))] : [];
}
