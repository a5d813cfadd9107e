using MessagePack;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Tests.Credentials;
using SecureChannels.Protocol.Wire;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Wire;

/// <summary>
/// Every protocol structure round-trips byte for byte, and each parser refuses hand-made non-canonical, wrong-version,
/// truncated, oversized, trailing and duplicated input with a typed error.
/// </summary>
public sealed class CanonicalStructureTests
{
    private static readonly byte[] CredentialId = [.. Enumerable.Range(0, 16).Select(i => (byte)i)];
    private static readonly byte[] IssuerBytes = [.. Enumerable.Repeat((byte)0x11, 32)];
    private static readonly byte[] SubjectBytes = [.. Enumerable.Repeat((byte)0x22, 32)];
    private const ulong NotBefore = 1_767_225_600; // 2026-01-01T00:00:00Z
    private const ulong NotAfter = NotBefore + 3600;

    private static WireErrorKind Refused(Action decode) => Assert.Throws<WireFormatException>(decode).Kind;

    private static void WriteValidAttributes(ref MessagePackWriter w)
    {
        w.WriteMapHeader(2);
        w.Write("env");
        w.WriteArrayHeader(2);
        w.Write("prod");
        w.Write("staging");
        w.Write("role");
        w.WriteArrayHeader(1);
        w.Write("billing");
    }

    private static void WriteValidPrincipal(ref MessagePackWriter w)
    {
        w.WriteArrayHeader(2);
        w.Write(1);
        w.Write("alice");
    }

    /// <summary>A credential written field by field; each argument replaces one field's writer.</summary>
    private static byte[] CredentialBytes(
        Msg.Writer? version = null,
        Msg.Writer? id = null,
        Msg.Writer? principal = null,
        Msg.Writer? attributes = null,
        Msg.Writer? notBefore = null,
        Msg.Writer? notAfter = null,
        Msg.Writer? depth = null,
        Msg.Writer? parent = null,
        int fields = 10) => Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(fields);
            (version ?? ((ref MessagePackWriter x) => x.Write(1)))(ref w);
            (id ?? ((ref MessagePackWriter x) => x.Write(CredentialId)))(ref w);
            w.Write(IssuerBytes);
            w.Write(SubjectBytes);
            (principal ?? WriteValidPrincipal)(ref w);
            (attributes ?? WriteValidAttributes)(ref w);
            (notBefore ?? ((ref MessagePackWriter x) => x.Write(NotBefore)))(ref w);
            (notAfter ?? ((ref MessagePackWriter x) => x.Write(NotAfter)))(ref w);
            (depth ?? ((ref MessagePackWriter x) => x.Write(2)))(ref w);
            (parent ?? ((ref MessagePackWriter x) => x.WriteNil()))(ref w);
            for (var i = 10; i < fields; i++)
            {
                w.WriteNil();
            }
        });

    private static Msg.Writer Attributes(params (string Name, string[] Values)[] entries) => (ref MessagePackWriter w) =>
    {
        w.WriteMapHeader(entries.Length);
        foreach (var (name, values) in entries)
        {
            w.Write(name);
            w.WriteArrayHeader(values.Length);
            foreach (var value in values)
            {
                w.Write(value);
            }
        }
    };

    private static Msg.Writer Raw(string hex) => (ref MessagePackWriter w) => w.WriteRaw(Convert.FromHexString(hex));

    // ----- Credential -----

    [Fact]
    public void HandWrittenCanonicalCredentialDecodesAndReencodesToTheSameBytes()
    {
        var bytes = CredentialBytes();

        var credential = Credential.Decode(bytes);

        Assert.Equal(bytes, credential.Encoded);
        Assert.Equal(CredentialId, credential.Id);
        Assert.Equal(Identifier.FromBytes(IssuerBytes), credential.Issuer);
        Assert.Equal(Principal.Parse("user:alice"), credential.Principal);
        Assert.Equal(AttributeSet.Parse(["env=prod", "env=staging", "role=billing"]), credential.Attributes);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds((long)NotAfter), credential.NotAfter);
        Assert.Equal(2, credential.MaxDelegationDepth);
        Assert.Null(credential.Parent);
    }

    [Fact]
    public void CredentialWithAParentRoundTrips()
    {
        var bytes = CredentialBytes(parent: (ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(2);
            w.Write(new byte[16]);
            w.Write(new byte[32]);
        });

        var credential = Credential.Decode(bytes);

        Assert.Equal(bytes, credential.Encoded);
        Assert.Equal(new ParentReference(new byte[16], new byte[32]), credential.Parent);
    }

    [Fact]
    public void CredentialIntegersInALongerFormAreNonCanonical()
    {
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(version: (ref MessagePackWriter w) => w.WriteUInt8(1)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(depth: (ref MessagePackWriter w) => w.WriteUInt8(2)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(depth: (ref MessagePackWriter w) => w.WriteUInt16(2)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(notBefore: (ref MessagePackWriter w) => w.WriteUInt64(NotBefore)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(notAfter: (ref MessagePackWriter w) => w.WriteInt64((long)NotAfter)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(principal: (ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(2);
            w.WriteUInt8(1);
            w.Write("alice");
        }))));
    }

    [Fact]
    public void CredentialWithAnotherVersionIsUnsupported()
    {
        Assert.Equal(WireErrorKind.UnsupportedVersion, Refused(() => Credential.Decode(CredentialBytes(version: (ref MessagePackWriter w) => w.Write(2)))));
        Assert.Equal(WireErrorKind.UnsupportedVersion, Refused(() => Credential.Decode(CredentialBytes(version: (ref MessagePackWriter w) => w.Write(0)))));
    }

    [Fact]
    public void UnsortedAttributeNamesAreNonCanonical()
    {
        var unsorted = Attributes(("role", ["billing"]), ("env", ["prod", "staging"]));

        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(attributes: unsorted))));
    }

    [Fact]
    public void AttributeNamesAreSortedByOrdinalByteOrder()
    {
        // "a-b" (0x2d) sorts before "a0" (0x30) before "a_" (0x5f) before "ab" (0x62).
        var sorted = Attributes(("a-b", ["x"]), ("a0", ["x"]), ("a_", ["x"]), ("ab", ["x"]));
        var unsorted = Attributes(("a0", ["x"]), ("a-b", ["x"]), ("a_", ["x"]), ("ab", ["x"]));

        var bytes = CredentialBytes(attributes: sorted);

        Assert.Equal(bytes, Credential.Decode(bytes).Encoded);
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(attributes: unsorted))));
    }

    [Fact]
    public void DuplicatedAttributeNameIsRefused()
    {
        var duplicated = Attributes(("env", ["prod"]), ("env", ["prod"]));
        var duplicatedWithOtherValues = Attributes(("env", ["prod"]), ("env", ["staging"]));

        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(attributes: duplicated))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(attributes: duplicatedWithOtherValues))));
    }

    [Fact]
    public void DuplicatedOrUnsortedAttributeValuesAreNonCanonical()
    {
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes(("env", ["prod", "prod"]))))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes(("env", ["staging", "prod"]))))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes(("env", ["prod", "staging", "prod"]))))));
    }

    [Fact]
    public void AttributeMapOrStringInALongerHeaderIsNonCanonical()
    {
        var map16 = Raw("de0001a3656e7691a470726f64");
        var str8Name = (Msg.Writer)((ref MessagePackWriter w) =>
        {
            w.WriteMapHeader(1);
            Msg.WriteStr8(ref w, "env");
            w.WriteArrayHeader(1);
            w.Write("prod");
        });

        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(attributes: map16))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(attributes: str8Name))));
    }

    [Fact]
    public void InvalidAttributesAreMalformed()
    {
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes(("Env", ["prod"]))))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes(("env", [""]))))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes(("env", []))))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(attributes: Raw("81c403656e7691a470726f64")))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(attributes: Raw("81a3656e76a470726f64")))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(attributes: Raw("91a3656e76")))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(attributes: Raw("81a3656e7691a2c328")))));
    }

    [Fact]
    public void AttributesOverTheirLimitsAreTooLarge()
    {
        var longName = new string('a', CredentialLimits.MaxAttributeNameLength + 1);
        var longValue = new string('v', CredentialLimits.MaxValueLength + 1);
        var manyValues = Enumerable.Range(0, CredentialLimits.MaxValuesPerAttribute + 1).Select(i => $"v{i:D3}").ToArray();
        string[] x = ["x"];
        var manyNames = Enumerable.Range(0, CredentialLimits.MaxAttributes + 1).Select(i => ($"a{i:D3}", x)).ToArray();

        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes((longName, ["x"]))))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes(("env", [longValue]))))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes(("env", manyValues))))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(CredentialBytes(attributes: Attributes(manyNames)))));
    }

    [Fact]
    public void InvalidPrincipalsAreRefused()
    {
        static Msg.Writer PrincipalOf(ulong kind, string id) => (ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(2);
            w.Write(kind);
            w.Write(id);
        };

        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(principal: PrincipalOf(4, "x")))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(principal: PrincipalOf(ulong.MaxValue, "x")))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(principal: PrincipalOf(0, "x")))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(principal: PrincipalOf(1, string.Empty)))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(CredentialBytes(principal: PrincipalOf(1, new string('a', CredentialLimits.MaxValueLength + 1))))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(principal: Raw("9101")))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(CredentialBytes(principal: Raw("9301a161c0")))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(principal: Raw("9201c0")))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(principal: Raw("9201a1ff")))));
        Assert.Equal("self", Credential.Decode(CredentialBytes(principal: PrincipalOf(0, string.Empty))).Principal.ToString());
    }

    [Fact]
    public void CredentialWithAnEmptyOrBackwardValidityOrTooDeepDelegationIsMalformed()
    {
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(notAfter: (ref MessagePackWriter w) => w.Write(NotBefore)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(notAfter: (ref MessagePackWriter w) => w.Write(NotBefore - 1)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(depth: (ref MessagePackWriter w) => w.Write(CredentialLimits.MaxChainLength)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(depth: (ref MessagePackWriter w) => w.Write(ulong.MaxValue)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(notAfter: (ref MessagePackWriter w) => w.Write(ulong.MaxValue)))));
        Assert.Equal(CredentialLimits.MaxChainLength - 1, Credential.Decode(CredentialBytes(depth: (ref MessagePackWriter w) => w.Write(CredentialLimits.MaxChainLength - 1))).MaxDelegationDepth);
    }

    [Fact]
    public void CredentialFieldsOfTheWrongSizeOrShapeAreRefused()
    {
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(id: (ref MessagePackWriter w) => w.Write(new byte[15])))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(CredentialBytes(id: (ref MessagePackWriter w) => w.Write(new byte[17])))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => Credential.Decode(CredentialBytes(id: (ref MessagePackWriter w) => Msg.WriteBin16(ref w, CredentialId)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(parent: Raw("91c410" + new string('0', 32))))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(CredentialBytes(parent: Raw("93c0c0c0")))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(CredentialBytes(fields: 9))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(CredentialBytes(fields: 11))));
    }

    [Fact]
    public void CredentialAsAKeyedMapIsMalformed()
    {
        var keyed = Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteMapHeader(2);
            w.Write("version");
            w.Write(1);
            w.Write("version");
            w.Write(1);
        });

        Assert.Equal(WireErrorKind.Malformed, Refused(() => Credential.Decode(keyed)));
    }

    [Fact]
    public void CredentialWithTrailingBytesOrOverTheSizeLimitIsRefused()
    {
        Assert.Equal(WireErrorKind.TrailingBytes, Refused(() => Credential.Decode(Msg.Concat(CredentialBytes(), [0xc0]))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => Credential.Decode(Msg.Concat(CredentialBytes(), new byte[CredentialLimits.MaxCredentialLength]))));
    }

    [Fact]
    public void EveryTruncationOfACredentialIsTruncated()
    {
        var bytes = CredentialBytes();

        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.Equal(WireErrorKind.Truncated, Refused(() => Credential.Decode(bytes.AsMemory(0, length))));
        }
    }

    [Fact]
    public async Task SignedCredentialAndChainWrapWireErrorsAsMalformed()
    {
        var world = await CredentialWorld.CreateAsync();
        var holder = await world.NewAgentAsync();
        var subject = await world.NewAgentAsync();
        var chain = await CredentialWorld.DelegateAsync(holder, await world.IssueAsync(holder), subject);
        var signed = chain.Leaf;

        static Msg.Writer SignedWith(byte[] credential, byte[] changeHash, byte[] signature) => (ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(3);
            w.Write(credential);
            w.Write(changeHash);
            w.Write(signature);
        };

        var nonCanonicalInner = Msg.Build(SignedWith(CredentialBytes(depth: (ref MessagePackWriter w) => w.WriteUInt8(2)), signed.IssuerChangeHash, signed.Signature));
        var shortHash = Msg.Build(SignedWith(signed.Credential.Encoded, signed.IssuerChangeHash[..31], signed.Signature));
        var longSignature = Msg.Build(SignedWith(signed.Credential.Encoded, signed.IssuerChangeHash, [.. signed.Signature, 0]));

        AssertMalformed(() => SignedCredential.Decode(nonCanonicalInner), WireErrorKind.NonCanonical);
        AssertMalformed(() => SignedCredential.Decode(shortHash), WireErrorKind.Malformed);
        AssertMalformed(() => SignedCredential.Decode(longSignature), WireErrorKind.TooLarge);
        AssertMalformed(() => SignedCredential.Decode(Msg.Concat(signed.Encoded, [0x00])), WireErrorKind.TrailingBytes);
        AssertMalformed(() => SignedCredential.Decode(new byte[CredentialLimits.MaxCredentialLength + 1]), WireErrorKind.TooLarge);

        static byte[] ChainWith(Msg.Writer version, byte[][] credentials, byte[][] histories) => Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(3);
            version(ref w);
            w.WriteArrayHeader(credentials.Length);
            foreach (var c in credentials)
            {
                w.Write(c);
            }

            w.WriteArrayHeader(histories.Length);
            foreach (var h in histories)
            {
                w.Write(h);
            }
        });

        var links = chain.Credentials.Select(c => c.Encoded).ToArray();
        var histories = chain.IssuerHistories.Select(h => h.Encoded).ToArray();
        Msg.Writer v1 = (ref MessagePackWriter w) => w.Write(1);

        Assert.Equal(chain.Encoded, ChainWith(v1, links, histories));
        AssertMalformed(() => CredentialChain.Decode(ChainWith((ref MessagePackWriter w) => w.Write(2), links, histories)), WireErrorKind.UnsupportedVersion);
        AssertMalformed(() => CredentialChain.Decode(ChainWith((ref MessagePackWriter w) => w.WriteUInt8(1), links, histories)), WireErrorKind.NonCanonical);
        AssertMalformed(() => CredentialChain.Decode(ChainWith(v1, [], [])), WireErrorKind.Malformed);
        AssertMalformed(() => CredentialChain.Decode(ChainWith(v1, links, [])), WireErrorKind.Malformed);
        AssertMalformed(() => CredentialChain.Decode(ChainWith(v1, links, [.. histories, .. histories])), WireErrorKind.TooLarge);
        AssertMalformed(() => CredentialChain.Decode(ChainWith(v1, [links[0], nonCanonicalInner], histories)), WireErrorKind.NonCanonical);
        AssertMalformed(() => CredentialChain.Decode(ChainWith(v1, links, [FlipVersion(histories[0])])), WireErrorKind.UnsupportedVersion);
        AssertMalformed(() => CredentialChain.Decode(Msg.Concat(chain.Encoded, [0xc0])), WireErrorKind.TrailingBytes);
        AssertMalformed(() => CredentialChain.Decode(new byte[CredentialLimits.MaxChainPresentationLength + 1]), WireErrorKind.TooLarge);
        for (var length = 0; length < chain.Encoded.Length; length++)
        {
            var error = Assert.Throws<CredentialException>(() => CredentialChain.Decode(chain.Encoded.AsMemory(0, length)));
            Assert.Equal(CredentialErrorKind.Malformed, error.Kind);
            Assert.Contains(WireKind(error), new[] { WireErrorKind.Truncated, WireErrorKind.Malformed });
        }
    }

    private static void AssertMalformed(Action decode, WireErrorKind inner)
    {
        var error = Assert.Throws<CredentialException>(decode);
        Assert.Equal(CredentialErrorKind.Malformed, error.Kind);
        Assert.Equal(inner, WireKind(error));
    }

    /// <summary>A history (or any versioned array) with version 2 in place of 1.</summary>
    private static byte[] FlipVersion(byte[] encoded)
    {
        var copy = encoded.ToArray();
        Assert.Equal(0x01, copy[1]);
        copy[1] = 0x02;
        return copy;
    }

    // ----- Identity change, history and attestation -----

    [Fact]
    public async Task IdentityStructuresRoundTripByteForByte()
    {
        var time = NewClock();
        var identity = await NewRotatedIdentityAsync(time, rotations: 2);
        var attestation = await identity.AttestChannelKeyAsync(new byte[32], TimeSpan.FromHours(1), time);

        Assert.Equal(identity.History.Encoded, IdentityHistory.Decode(identity.History.Encoded).Encoded);
        foreach (var change in identity.History.Changes)
        {
            Assert.Equal(change.Change.Encoded, IdentityChange.Decode(change.Change.Encoded).Encoded);
        }

        Assert.Equal(attestation.Encode(), SignedKeyAttestation.Decode(attestation.Encode()).Encode());
        Assert.Equal(attestation.Attestation.Encoded, KeyAttestation.Decode(attestation.Attestation.Encoded).Encoded);
    }

    private static byte[] ChangeBytes(Msg.Writer? version = null, Msg.Writer? previous = null, Msg.Writer? key = null, Msg.Writer? created = null, int fields = 4) =>
        Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(fields);
            (version ?? ((ref MessagePackWriter x) => x.Write(1)))(ref w);
            (previous ?? ((ref MessagePackWriter x) => x.WriteNil()))(ref w);
            (key ?? ((ref MessagePackWriter x) => x.Write(new byte[32])))(ref w);
            (created ?? ((ref MessagePackWriter x) => x.Write(NotBefore)))(ref w);
            for (var i = 4; i < fields; i++)
            {
                w.WriteNil();
            }
        });

    [Fact]
    public void IdentityChangeRefusesEveryNonCanonicalOrBrokenField()
    {
        Assert.Equal(ChangeBytes(), IdentityChange.Decode(ChangeBytes()).Encoded);
        Assert.Equal(WireErrorKind.UnsupportedVersion, Refused(() => IdentityChange.Decode(ChangeBytes(version: (ref MessagePackWriter w) => w.Write(2)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => IdentityChange.Decode(ChangeBytes(version: (ref MessagePackWriter w) => w.WriteUInt8(1)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => IdentityChange.Decode(ChangeBytes(created: (ref MessagePackWriter w) => w.WriteUInt64(NotBefore)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => IdentityChange.Decode(ChangeBytes(key: (ref MessagePackWriter w) => Msg.WriteBin16(ref w, new byte[32])))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => IdentityChange.Decode(ChangeBytes(previous: (ref MessagePackWriter w) => w.Write(new byte[31])))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => IdentityChange.Decode(ChangeBytes(key: (ref MessagePackWriter w) => w.Write(new byte[33])))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => IdentityChange.Decode(ChangeBytes(key: (ref MessagePackWriter w) => w.WriteNil()))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => IdentityChange.Decode(ChangeBytes(created: (ref MessagePackWriter w) => w.Write(ulong.MaxValue)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => IdentityChange.Decode(ChangeBytes(created: (ref MessagePackWriter w) => w.Write(-1)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => IdentityChange.Decode(ChangeBytes(fields: 3))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => IdentityChange.Decode(ChangeBytes(fields: 5))));
        Assert.Equal(WireErrorKind.TrailingBytes, Refused(() => IdentityChange.Decode(Msg.Concat(ChangeBytes(), [0x00]))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => IdentityChange.Decode(new byte[IdentityLimits.MaxSignedStructureLength + 1])));
    }

    private static IdentityException HistoryRefused(byte[] bytes, IdentityErrorKind kind, WireErrorKind inner)
    {
        var error = Assert.Throws<IdentityException>(() => IdentityHistory.Decode(bytes));
        Assert.Equal(kind, error.Kind);
        Assert.Equal(inner, WireKind(error));
        return error;
    }

    private static byte[] HistoryBytes(Msg.Writer version, params Msg.Writer[] changes) => Msg.Build((ref MessagePackWriter w) =>
    {
        w.WriteArrayHeader(2);
        version(ref w);
        w.WriteArrayHeader(changes.Length);
        foreach (var change in changes)
        {
            change(ref w);
        }
    });

    private static Msg.Writer SignedChange(byte[] change, byte[] signature, byte[]? previous, int fields = 3) => (ref MessagePackWriter w) =>
    {
        w.WriteArrayHeader(fields);
        w.Write(change);
        w.Write(signature);
        if (previous is null)
        {
            w.WriteNil();
        }
        else
        {
            w.Write(previous);
        }

        for (var i = 3; i < fields; i++)
        {
            w.WriteNil();
        }
    };

    [Fact]
    public async Task HistoryParserRefusesEachKindOfBadInputWithATypedError()
    {
        var identity = await NewIdentityAsync(NewClock());
        var genuine = identity.History.Changes[0];
        Msg.Writer v1 = (ref MessagePackWriter w) => w.Write(1);
        var valid = SignedChange(genuine.Change.Encoded, genuine.Signature, null);

        Assert.Equal(identity.History.Encoded, HistoryBytes(v1, valid));
        HistoryRefused(HistoryBytes((ref MessagePackWriter w) => w.Write(2), valid), IdentityErrorKind.Malformed, WireErrorKind.UnsupportedVersion);
        HistoryRefused(HistoryBytes((ref MessagePackWriter w) => w.WriteUInt16(1), valid), IdentityErrorKind.Malformed, WireErrorKind.NonCanonical);
        HistoryRefused(HistoryBytes(v1), IdentityErrorKind.Malformed, WireErrorKind.Malformed);
        HistoryRefused(HistoryBytes(v1, SignedChange(ChangeBytes(version: (ref MessagePackWriter w) => w.WriteUInt8(1)), genuine.Signature, null)), IdentityErrorKind.Malformed, WireErrorKind.NonCanonical);
        HistoryRefused(HistoryBytes(v1, SignedChange(ChangeBytes(version: (ref MessagePackWriter w) => w.Write(9)), genuine.Signature, null)), IdentityErrorKind.Malformed, WireErrorKind.UnsupportedVersion);
        HistoryRefused(HistoryBytes(v1, SignedChange(genuine.Change.Encoded, genuine.Signature[..63], null)), IdentityErrorKind.Malformed, WireErrorKind.Malformed);
        HistoryRefused(HistoryBytes(v1, SignedChange(genuine.Change.Encoded, genuine.Signature, null, fields: 2)), IdentityErrorKind.Malformed, WireErrorKind.Malformed);
        HistoryRefused(Msg.Concat(identity.History.Encoded, [0xc0]), IdentityErrorKind.Malformed, WireErrorKind.TrailingBytes);

        // A keyed map with a duplicated key is not a history.
        HistoryRefused(Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteMapHeader(2);
            w.Write("version");
            w.Write(1);
            w.Write("version");
            w.Write(1);
        }), IdentityErrorKind.Malformed, WireErrorKind.Malformed);
    }

    [Fact]
    public async Task HistoryOverTheChangeOrByteLimitIsTooLong()
    {
        var identity = await NewIdentityAsync(NewClock());
        var change = identity.History.Changes[0];
        var oneChange = Msg.Build(SignedChange(change.Change.Encoded, change.Signature, null));
        var tooMany = Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(2);
            w.Write(1);
            w.WriteArrayHeader(IdentityLimits.MaxChanges + 1);
            for (var i = 0; i <= IdentityLimits.MaxChanges; i++)
            {
                w.WriteRaw(oneChange);
            }
        });

        HistoryRefused(tooMany, IdentityErrorKind.TooLong, WireErrorKind.TooLarge);
        HistoryRefused(new byte[IdentityLimits.MaxHistoryLength + 1], IdentityErrorKind.TooLong, WireErrorKind.TooLarge);
    }

    [Fact]
    public async Task HistoryWithAnOversizedFieldIsMalformedNotTooLong()
    {
        // IdentityErrorKind.TooLong means "more than MaxChanges changes"; a 65-byte signature or a 33-byte key is
        // simply malformed.
        var identity = await NewIdentityAsync(NewClock());
        var genuine = identity.History.Changes[0];
        Msg.Writer v1 = (ref MessagePackWriter w) => w.Write(1);

        HistoryRefused(HistoryBytes(v1, SignedChange(genuine.Change.Encoded, [.. genuine.Signature, 0], null)), IdentityErrorKind.Malformed, WireErrorKind.TooLarge);
        HistoryRefused(HistoryBytes(v1, SignedChange(ChangeBytes(key: (ref MessagePackWriter w) => w.Write(new byte[33])), genuine.Signature, null)), IdentityErrorKind.Malformed, WireErrorKind.TooLarge);
        HistoryRefused(HistoryBytes(v1, SignedChange(genuine.Change.Encoded, genuine.Signature, null, fields: 4)), IdentityErrorKind.Malformed, WireErrorKind.TooLarge);
    }

    private static byte[] AttestationBytes(Msg.Writer? version = null, Msg.Writer? subject = null, Msg.Writer? created = null, Msg.Writer? expires = null, int fields = 6) =>
        Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(fields);
            (version ?? ((ref MessagePackWriter x) => x.Write(1)))(ref w);
            (subject ?? ((ref MessagePackWriter x) => x.Write(SubjectBytes)))(ref w);
            w.Write(new byte[32]);
            w.Write(new byte[32]);
            (created ?? ((ref MessagePackWriter x) => x.Write(NotBefore)))(ref w);
            (expires ?? ((ref MessagePackWriter x) => x.Write(NotAfter)))(ref w);
            for (var i = 6; i < fields; i++)
            {
                w.WriteNil();
            }
        });

    [Fact]
    public void AttestationRefusesEveryNonCanonicalOrBrokenField()
    {
        Assert.Equal(AttestationBytes(), KeyAttestation.Decode(AttestationBytes()).Encoded);
        Assert.Equal(WireErrorKind.UnsupportedVersion, Refused(() => KeyAttestation.Decode(AttestationBytes(version: (ref MessagePackWriter w) => w.Write(2)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => KeyAttestation.Decode(AttestationBytes(version: (ref MessagePackWriter w) => w.WriteUInt8(1)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => KeyAttestation.Decode(AttestationBytes(expires: (ref MessagePackWriter w) => w.WriteUInt64(NotAfter)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => KeyAttestation.Decode(AttestationBytes(expires: (ref MessagePackWriter w) => w.Write(NotBefore)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => KeyAttestation.Decode(AttestationBytes(subject: (ref MessagePackWriter w) => w.Write(new byte[31])))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => KeyAttestation.Decode(AttestationBytes(fields: 5))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => KeyAttestation.Decode(AttestationBytes(fields: 7))));
        Assert.Equal(WireErrorKind.TrailingBytes, Refused(() => KeyAttestation.Decode(Msg.Concat(AttestationBytes(), [0x00]))));
    }

    [Fact]
    public async Task SignedAttestationWrapsWireErrorsAsMalformed()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var signed = await identity.AttestChannelKeyAsync(new byte[32], TimeSpan.FromHours(1), time);

        static byte[] Signed(byte[] attestation, byte[] signature, int fields = 2) => Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(fields);
            w.Write(attestation);
            w.Write(signature);
            for (var i = 2; i < fields; i++)
            {
                w.WriteNil();
            }
        });

        void Malformed(byte[] bytes, WireErrorKind inner)
        {
            var error = Assert.Throws<IdentityException>(() => SignedKeyAttestation.Decode(bytes));
            Assert.Equal(IdentityErrorKind.Malformed, error.Kind);
            Assert.Equal(inner, WireKind(error));
        }

        Assert.Equal(signed.Encode(), Signed(signed.Attestation.Encoded, signed.Signature));
        Malformed(Signed(AttestationBytes(version: (ref MessagePackWriter w) => w.Write(3)), signed.Signature), WireErrorKind.UnsupportedVersion);
        Malformed(Signed(AttestationBytes(created: (ref MessagePackWriter w) => w.WriteUInt64(NotBefore)), signed.Signature), WireErrorKind.NonCanonical);
        Malformed(Signed(signed.Attestation.Encoded, signed.Signature[..63]), WireErrorKind.Malformed);
        Malformed(Signed(signed.Attestation.Encoded, signed.Signature, fields: 3), WireErrorKind.TooLarge);
        Malformed(Msg.Concat(signed.Encode(), [0xc0]), WireErrorKind.TrailingBytes);
        Malformed(new byte[IdentityLimits.MaxSignedStructureLength + 1], WireErrorKind.TooLarge);
        Malformed(Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteMapHeader(2);
            w.Write("attestation");
            w.Write(signed.Attestation.Encoded);
            w.Write("attestation");
            w.Write(signed.Attestation.Encoded);
        }), WireErrorKind.Malformed);
    }

    // ----- Revocation lists -----

    private static byte[] ListBytes(Msg.Writer? version = null, Msg.Writer? sequence = null, params (ulong Kind, byte[] Value)[] entries) =>
        Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(5);
            (version ?? ((ref MessagePackWriter x) => x.Write(1)))(ref w);
            w.Write(IssuerBytes);
            (sequence ?? ((ref MessagePackWriter x) => x.Write(3)))(ref w);
            w.Write(NotBefore);
            w.WriteArrayHeader(entries.Length);
            foreach (var (kind, value) in entries)
            {
                w.WriteArrayHeader(2);
                w.Write(kind);
                w.Write(value);
            }
        });

    [Fact]
    public void RevocationListRefusesEveryNonCanonicalOrBrokenField()
    {
        var id = CredentialId;
        var principal = "user:alice"u8.ToArray();
        var sorted = ListBytes(null, null, (0, id), (1, SubjectBytes), (2, principal));

        var list = RevocationList.Decode(sorted);
        Assert.Equal(sorted, list.Encoded);
        Assert.Equal(3, list.Entries.Length);

        Assert.Equal(WireErrorKind.UnsupportedVersion, Refused(() => RevocationList.Decode(ListBytes((ref MessagePackWriter w) => w.Write(2), null, (0, id)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => RevocationList.Decode(ListBytes(null, (ref MessagePackWriter w) => w.WriteUInt8(3), (0, id)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => RevocationList.Decode(ListBytes(null, null, (1, SubjectBytes), (0, id)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => RevocationList.Decode(ListBytes(null, null, (0, id), (0, id)))));
        Assert.Equal(WireErrorKind.NonCanonical, Refused(() => RevocationList.Decode(ListBytes(null, null, (2, "user:bob"u8.ToArray()), (2, principal)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => RevocationList.Decode(ListBytes(null, null, (3, id)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => RevocationList.Decode(ListBytes(null, null, (0, id[..15])))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => RevocationList.Decode(ListBytes(null, null, (1, [.. SubjectBytes, 0])))));
        Assert.Equal(WireErrorKind.Malformed, Refused(() => RevocationList.Decode(ListBytes(null, null, (2, [])))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => RevocationList.Decode(ListBytes(null, null, (2, new byte[CredentialLimits.MaxValueLength + 8])))));
        Assert.Equal(WireErrorKind.TrailingBytes, Refused(() => RevocationList.Decode(Msg.Concat(sorted, [0x00]))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(() => RevocationList.Decode(new byte[CredentialLimits.MaxRevocationListLength + 1])));
        for (var length = 0; length < sorted.Length; length++)
        {
            Assert.Equal(WireErrorKind.Truncated, Refused(() => RevocationList.Decode(sorted.AsMemory(0, length))));
        }
    }

    [Fact]
    public void RevocationListWithMoreEntriesThanTheLimitIsTooLarge()
    {
        var tooMany = Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(5);
            w.Write(1);
            w.Write(IssuerBytes);
            w.Write(1);
            w.Write(NotBefore);
            w.WriteArrayHeader(CredentialLimits.MaxRevocationEntries + 1);
            w.WriteRaw(new byte[CredentialLimits.MaxRevocationEntries + 1]);
        });

        Assert.Equal(WireErrorKind.TooLarge, Refused(() => RevocationList.Decode(tooMany)));
    }

    [Fact]
    public async Task SignedRevocationListWrapsWireErrorsAsMalformed()
    {
        var world = await CredentialWorld.CreateAsync();
        var signed = await world.RevocationListAsync(1, [RevocationEntry.ForCredential(CredentialId)]);

        static byte[] Signed(byte[] list, byte[] hash, byte[] signature) => Msg.Build((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(3);
            w.Write(list);
            w.Write(hash);
            w.Write(signature);
        });

        Assert.Equal(signed.Encode(), Signed(signed.List.Encoded, signed.IssuerChangeHash, signed.Signature));
        AssertMalformed(() => SignedRevocationList.Decode(Signed(ListBytes(null, null, (0, CredentialId), (0, CredentialId)), signed.IssuerChangeHash, signed.Signature)), WireErrorKind.NonCanonical);
        AssertMalformed(() => SignedRevocationList.Decode(Signed(FlipVersion(signed.List.Encoded), signed.IssuerChangeHash, signed.Signature)), WireErrorKind.UnsupportedVersion);
        AssertMalformed(() => SignedRevocationList.Decode(Signed(signed.List.Encoded, signed.IssuerChangeHash[..31], signed.Signature)), WireErrorKind.Malformed);
        AssertMalformed(() => SignedRevocationList.Decode(Msg.Concat(signed.Encode(), [0xc0])), WireErrorKind.TrailingBytes);
        AssertMalformed(() => SignedRevocationList.Decode(new byte[CredentialLimits.MaxRevocationListLength + 257]), WireErrorKind.TooLarge);
        var encoded = signed.Encode();
        for (var length = 0; length < encoded.Length; length++)
        {
            var error = Assert.Throws<CredentialException>(() => SignedRevocationList.Decode(encoded.AsMemory(0, length)));
            Assert.Equal(CredentialErrorKind.Malformed, error.Kind);
            Assert.Contains(WireKind(error), new[] { WireErrorKind.Truncated, WireErrorKind.Malformed });
        }
    }

    // ----- Lengths the reader cannot represent -----

    public static TheoryData<string, string> HugeLengthInputs { get; } = new()
    {
        { "history", "92019193c680000000" },
        { "history", "92019193dbffffffff" },
        { "attestation", "92c680000000" },
        { "signed credential", "93c6ffffffff00" },
        { "chain", "930191c680000000" },
        { "revocation list", "93c680000000" },
        { "credential", "9a01c680000000" + "0000000000000000" },
        { "credential principal", "9a01c410" + new string('0', 32) + "c420" + new string('1', 64) + "c420" + new string('2', 64) + "9201dbffffffff" },
        { "attribute name", "9a01c410" + new string('0', 32) + "c420" + new string('1', 64) + "c420" + new string('2', 64) + "9201a161" + "81db80000000" },
    };

    [Theory]
    [MemberData(nameof(HugeLengthInputs))]
    public void EveryParserRefusesAByteOrTextStringClaimingTwoGigabytesWithATypedError(string parser, string hex)
    {
        var input = Convert.FromHexString(hex);
        Func<object> decode = parser switch
        {
            "history" => () => IdentityHistory.Decode(input),
            "attestation" => () => SignedKeyAttestation.Decode(input),
            "signed credential" => () => SignedCredential.Decode(input),
            "chain" => () => CredentialChain.Decode(input),
            "revocation list" => () => SignedRevocationList.Decode(input),
            _ => () => Credential.Decode(input),
        };

        var error = Record.Exception(decode);

        Assert.True(error is WireFormatException or IdentityException or CredentialException, $"{parser}: {error?.GetType().Name ?? "decoded"}: {error?.Message}");
    }

    // ----- Values the constructors accept must encode to something their decoders accept -----

    [Fact]
    public void CredentialWithADefaultPrincipalRoundTrips()
    {
        // default(Principal) is a value of a public struct; Credential accepts it, so Decode(Encode(x)) must hold.
        var credential = new Credential(CredentialId, Identifier.FromBytes(IssuerBytes), Identifier.FromBytes(SubjectBytes), default, AttributeSet.Empty, DateTimeOffset.FromUnixTimeSeconds((long)NotBefore), DateTimeOffset.FromUnixTimeSeconds((long)NotAfter), 0, null);

        Assert.Equal(credential.Encoded, Credential.Decode(credential.Encoded).Encoded);
    }
}
