using CsCheck;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Tests.Credentials;
using SecureChannels.Protocol.Tests.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Wire;

/// <summary>
/// Valid encodings of every parsed structure, with the context needed to verify them, built once for the
/// property tests.
/// </summary>
public sealed class ParserSamples : IAsyncLifetime
{
    public IReadOnlyDictionary<string, Parser> Parsers { get; private set; } = new Dictionary<string, Parser>();

    public async Task InitializeAsync()
    {
        var world = await CredentialWorld.CreateAsync();
        var a = await world.NewAgentAsync();
        var b = await world.NewAgentAsync();
        var c = await world.NewAgentAsync();
        var rotated = await IdentityTestKit.NewRotatedIdentityAsync(world.Time, rotations: 2);
        var channelKey = Enumerable.Range(0, 32).Select(i => (byte)(i * 7)).ToArray();
        var attestation = await rotated.AttestChannelKeyAsync(channelKey, TimeSpan.FromDays(1), world.Time);
        var root = await world.IssueAsync(a, ["env=prod", "env=staging", "role=billing"], Principal.Parse("team:ops"));
        var chain = await CredentialWorld.DelegateAsync(b, await CredentialWorld.DelegateAsync(a, root, b, ["env=prod", "role=billing"]), c, ["env=prod"]);
        var list = await world.RevocationListAsync(
            9,
            [RevocationEntry.ForCredential(Credential.NewId()), RevocationEntry.ForSubject(b.Identifier), RevocationEntry.ForPrincipal(Principal.Parse("user:alice"))]);
        var verifier = world.Verifier;
        var authority = world.Authority.Verified;
        var now = world.Now;

        Parsers = new Dictionary<string, Parser>
        {
            ["history"] = new(rotated.History.Encoded, static bytes => IdentityHistory.Decode(bytes), static h => ((IdentityHistory)h).Verify(), typeof(IdentityException)),
            ["attestation"] = new(
                attestation.Encode(),
                static bytes => SignedKeyAttestation.Decode(bytes),
                s => ((SignedKeyAttestation)s).Verify(rotated.Verified, channelKey, now, TimeSpan.FromMinutes(1)),
                typeof(IdentityException)),
            ["signed credential"] = new(
                root.Leaf.Encoded,
                static bytes => SignedCredential.Decode(bytes),
                s => verifier.Verify(new CredentialChain([(SignedCredential)s], [])),
                typeof(CredentialException)),
            ["chain"] = new(chain.Encoded, static bytes => CredentialChain.Decode(bytes), ch => verifier.Verify((CredentialChain)ch), typeof(CredentialException)),
            ["revocation list"] = new(list.Encode(), static bytes => SignedRevocationList.Decode(bytes), l => ((SignedRevocationList)l).Verify(authority), typeof(CredentialException)),
            ["credential"] = new(root.Leaf.Credential.Encoded, static bytes => Credential.Decode(bytes), null, null),
            ["identity change"] = new(rotated.History.Changes[1].Change.Encoded, static bytes => IdentityChange.Decode(bytes), null, null),
            ["key attestation"] = new(attestation.Attestation.Encoded, static bytes => KeyAttestation.Decode(bytes), null, null),
            ["unsigned revocation list"] = new(list.List.Encoded, static bytes => RevocationList.Decode(bytes), null, null),
        };

        // The samples themselves decode and verify, so every refusal below is about the mutation.
        foreach (var parser in Parsers.Values)
        {
            parser.Verify?.Invoke(parser.Decode(parser.Valid));
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>A parser under test: a valid encoding, the decoder, and (for signed structures) a verification that throws <see cref="VerifyError"/>.</summary>
public sealed record Parser(byte[] Valid, Func<byte[], object> Decode, Action<object>? Verify, Type? VerifyError);

/// <summary>
/// Property-based tests (CsCheck) for every parser: random bytes and random mutations of valid encodings give a typed
/// error (<see cref="WireFormatException"/>, <see cref="IdentityException"/> or <see cref="CredentialException"/>) or a
/// correct result, never another exception; and a mutated signed structure that still decodes never verifies.
/// </summary>
public sealed class CanonicalPropertyTests(ParserSamples samples) : IClassFixture<ParserSamples>
{
    public static TheoryData<string> AllParsers { get; } =
        ["history", "attestation", "signed credential", "chain", "revocation list", "credential", "identity change", "key attestation", "unsigned revocation list"];

    public static TheoryData<string> SignedParsers { get; } = ["history", "attestation", "signed credential", "chain", "revocation list"];

    /// <summary>One edit: 0 overwrite, 1 flip a bit, 2 insert, 3 delete; at a position taken modulo the length.</summary>
    private static readonly Gen<(int Op, int Position, byte Value)> Edit = Gen.Select(Gen.Int[0, 3], Gen.Int[0, int.MaxValue], Gen.Byte);

    private static readonly Gen<(int Op, int Position, byte Value)[]> Edits = Edit.Array[1, 6];

    private static readonly int[] Bits = [0, 7];

    private static bool IsTyped(Exception e) => e is WireFormatException or IdentityException or CredentialException;

    /// <summary>Decodes, returning null for a typed refusal; any other exception escapes and fails the property.</summary>
    private static object? DecodeOrRefuse(Parser parser, byte[] input)
    {
        try
        {
            var decoded = parser.Decode(input);
            Assert.NotNull(decoded);
            return decoded;
        }
        catch (Exception e) when (IsTyped(e))
        {
            return null;
        }
    }

    private static byte[] Apply(byte[] original, (int Op, int Position, byte Value)[] edits)
    {
        var bytes = original.ToList();
        foreach (var (op, position, value) in edits)
        {
            if (op == 2)
            {
                bytes.Insert(position % (bytes.Count + 1), value);
                continue;
            }

            if (bytes.Count == 0)
            {
                continue;
            }

            var at = position % bytes.Count;
            switch (op)
            {
                case 0:
                    bytes[at] = value;
                    break;
                case 1:
                    bytes[at] ^= (byte)(1 << (value % 8));
                    break;
                default:
                    bytes.RemoveAt(at);
                    break;
            }
        }

        return [.. bytes];
    }

    /// <summary>A decodable input is either the original or a structure whose verification fails with the parser's typed error.</summary>
    private static void AssertDecodableOnlyIfGenuine(Parser parser, byte[] original, byte[] mutated)
    {
        var decoded = DecodeOrRefuse(parser, mutated);
        if (decoded is null || parser.Verify is null)
        {
            return;
        }

        if (mutated.AsSpan().SequenceEqual(original))
        {
            parser.Verify(decoded);
            return;
        }

        var error = Record.Exception(() => parser.Verify(decoded));
        Assert.True(error is not null, $"A mutated encoding decoded and verified: {Convert.ToHexStringLower(mutated)}");
        Assert.IsType(parser.VerifyError!, error);
    }

    [Theory]
    [MemberData(nameof(AllParsers))]
    public void RandomBytesGiveATypedErrorOrADecodedValue(string name)
    {
        var parser = samples.Parsers[name];

        Gen.Byte.Array[0, 600].Sample(bytes => DecodeOrRefuse(parser, bytes), iter: 3000);
    }

    [Theory]
    [MemberData(nameof(AllParsers))]
    public void ValidPrefixFollowedByRandomBytesGivesATypedErrorOrADecodedValue(string name)
    {
        var parser = samples.Parsers[name];
        var valid = parser.Valid;

        Gen.Select(Gen.Int[0, valid.Length], Gen.Byte.Array[0, 80]).Sample(
            (cut, tail) => AssertDecodableOnlyIfGenuine(parser, valid, [.. valid.AsSpan(0, cut), .. tail]),
            iter: 1000);
    }

    [Theory]
    [MemberData(nameof(AllParsers))]
    public void MutatedValidEncodingsGiveATypedErrorOrAStructureThatDoesNotVerify(string name)
    {
        var parser = samples.Parsers[name];
        var valid = parser.Valid;

        Edits.Sample(edits => AssertDecodableOnlyIfGenuine(parser, valid, Apply(valid, edits)), iter: 1000);
    }

    [Theory]
    [MemberData(nameof(SignedParsers))]
    public void FlippingAnySingleBitEitherBreaksTheEncodingOrTheSignature(string name)
    {
        var parser = samples.Parsers[name];
        var valid = parser.Valid;

        // Deterministic and exhaustive over positions: the lowest and highest bit of every byte.
        for (var index = 0; index < valid.Length; index++)
        {
            foreach (var bit in Bits)
            {
                AssertDecodableOnlyIfGenuine(parser, valid, IdentityTestKit.FlipBit(valid, index, bit));
            }
        }
    }

    [Theory]
    [MemberData(nameof(AllParsers))]
    public void EveryTruncationAndTheOversizedInputAreTypedErrors(string name)
    {
        var parser = samples.Parsers[name];
        var valid = parser.Valid;

        for (var length = 0; length < valid.Length; length++)
        {
            var error = Record.Exception(() => parser.Decode(valid[..length]));
            Assert.True(error is not null && IsTyped(error), $"{name} cut to {length} bytes: {error?.GetType().Name ?? "decoded"}");
            Assert.Contains(IdentityTestKit.WireKind(error!), new[] { WireErrorKind.Truncated, WireErrorKind.Malformed });
        }

        var trailing = Record.Exception(() => parser.Decode([.. valid, 0xc0]));
        Assert.True(trailing is not null && IsTyped(trailing));
        Assert.Equal(WireErrorKind.TrailingBytes, IdentityTestKit.WireKind(trailing));
    }

    [Theory]
    [MemberData(nameof(AllParsers))]
    public void ValidEncodingDecodesAndReencodesToTheSameBytes(string name)
    {
        var parser = samples.Parsers[name];

        var decoded = parser.Decode(parser.Valid);

        byte[] reencoded = decoded switch
        {
            IdentityHistory h => h.Encoded,
            SignedKeyAttestation s => s.Encode(),
            SignedCredential s => s.Encoded,
            CredentialChain c => c.Encoded,
            SignedRevocationList l => l.Encode(),
            Credential c => c.Encoded,
            IdentityChange c => c.Encoded,
            KeyAttestation a => a.Encoded,
            RevocationList l => l.Encoded,
            _ => throw new InvalidOperationException(decoded.GetType().Name),
        };
        Assert.Equal(parser.Valid, reencoded);
    }

    [Fact]
    public void RandomAttributeSetsRoundTripThroughACredential()
    {
        var name = Gen.Char["abcxyz"].Array[1, 3].Select(c => new string(c));
        var value = Gen.Char["aé0-"].Array[1, 6].Select(c => new string(c));
        var attributes = Gen.Select(name, value.Array[1, 4]).Array[0, 5];

        attributes.Sample(
            entries =>
            {
                var set = AttributeSet.Create(entries.DistinctBy(e => e.Item1).Select(e => KeyValuePair.Create(e.Item1, (IEnumerable<string>)e.Item2)));
                var credential = new Credential(new byte[16], Identifier.FromBytes(new byte[32]), Identifier.FromBytes(new byte[32]), Principal.Self, set, IdentityTestKit.Start, IdentityTestKit.Start.AddHours(1), 0, null);

                var decoded = Credential.Decode(credential.Encoded);

                Assert.Equal(set, decoded.Attributes);
                Assert.Equal(credential.Encoded, decoded.Encoded);
            },
            iter: 500);
    }

    [Fact]
    public void RandomUnsignedIntegersRoundTripInTheirShortestForm()
    {
        Gen.ULong.Sample(
            value =>
            {
                var writer = new CanonicalWriter();
                writer.WriteUnsigned(value);
                var bytes = writer.ToArray();

                var decoded = CanonicalEncoding.Decode(bytes, "n", 16, static (ref CanonicalReader r) => r.ReadUnsigned("n"), static v =>
                {
                    var w = new CanonicalWriter();
                    w.WriteUnsigned(v);
                    return w.ToArray();
                });

                Assert.Equal(value, decoded);
                var expectedLength = value switch { < 128 => 1, <= byte.MaxValue => 2, <= ushort.MaxValue => 3, <= uint.MaxValue => 5, _ => 9 };
                Assert.Equal(expectedLength, bytes.Length);
            },
            iter: 2000);
    }
}
