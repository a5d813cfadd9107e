using SecureChannels.Protocol.Noise;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>Protocol names (spec §8) and pattern modifiers (spec §9, §10.2).</summary>
public sealed class ProtocolNameTests
{
    public static TheoryData<string> BaseNames() => [.. HandshakePattern.BaseNames.Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(BaseNames))]
    public void EveryBasePatternNameParsesInAFullProtocolName(string pattern)
    {
        var protocol = NoiseProtocol.Parse($"Noise_{pattern}_25519_ChaChaPoly_BLAKE2s");
        Assert.Equal(pattern, protocol.Pattern.Name);
        Assert.Equal(pattern.Length == 1, protocol.Pattern.IsOneWay);
        Assert.Equal(0, protocol.Pattern.PskCount);
        Assert.NotEmpty(protocol.Pattern.Messages);
        Assert.True(protocol.Pattern.Messages[0].FromInitiator);
        Assert.Equal("25519", protocol.Dh.Name);
        Assert.Equal("ChaChaPoly", protocol.Cipher.Name);
        Assert.Equal("BLAKE2s", protocol.Hash.Name);
        Assert.Equal($"Noise_{pattern}_25519_ChaChaPoly_BLAKE2s", protocol.Name);
    }

    [Theory]
    [MemberData(nameof(BaseNames))]
    public void MessagesAlternateDirection(string pattern)
    {
        var messages = HandshakePattern.Parse(pattern).Messages;
        for (var i = 1; i < messages.Length; i++)
        {
            Assert.NotEqual(messages[i - 1].FromInitiator, messages[i].FromInitiator);
        }
    }

    [Theory]
    [InlineData("SHA256", 32)]
    [InlineData("SHA512", 64)]
    [InlineData("BLAKE2b", 64)]
    [InlineData("BLAKE2s", 32)]
    public void HashNamesResolveWithTheirLengths(string hash, int length)
    {
        var protocol = NoiseProtocol.Parse($"Noise_NN_25519_AESGCM_{hash}");
        Assert.Equal(hash, protocol.Hash.Name);
        Assert.Equal(length, protocol.Hash.HashLength);
        Assert.Equal("AESGCM", protocol.Cipher.Name);
    }

    [Theory]
    [InlineData("XXpsk0+psk3", 2)]
    [InlineData("NNpsk0+psk1+psk2", 3)]
    [InlineData("IKpsk2", 1)]
    [InlineData("Npsk0", 1)]
    [InlineData("XXfallback", 0)]
    [InlineData("NXfallback", 0)]
    [InlineData("IXfallback", 0)]
    [InlineData("XXfallback+psk0", 1)]
    public void ModifiersParse(string pattern, int pskCount)
    {
        var parsed = NoiseProtocol.Parse($"Noise_{pattern}_25519_ChaChaPoly_SHA256").Pattern;
        Assert.Equal(pattern, parsed.Name);
        Assert.Equal(pskCount, parsed.PskCount);
    }

    [Fact]
    public void PskModifiersPlacePskTokensAtTheStartOfTheFirstOrTheEndOfTheNthMessage()
    {
        var pattern = HandshakePattern.Parse("XXpsk0+psk3");
        Assert.Equal(NoiseToken.Psk, pattern.Messages[0].Tokens[0]);
        Assert.Equal(NoiseToken.Psk, pattern.Messages[2].Tokens[^1]);
        Assert.DoesNotContain(NoiseToken.Psk, pattern.Messages[1].Tokens);

        var psk2 = HandshakePattern.Parse("NNpsk2");
        Assert.Equal([NoiseToken.E, NoiseToken.EE, NoiseToken.Psk], psk2.Messages[1].Tokens.ToArray());
    }

    [Fact]
    public void FallbackTurnsTheFirstMessageIntoTheInitiatorPreMessage()
    {
        var pattern = HandshakePattern.Parse("XXfallback");
        Assert.Equal([NoiseToken.E], pattern.InitiatorPreMessage.ToArray());
        Assert.Equal(2, pattern.Messages.Length);
        Assert.False(pattern.Messages[0].FromInitiator);
        Assert.Equal([NoiseToken.E, NoiseToken.EE, NoiseToken.S, NoiseToken.ES], pattern.Messages[0].Tokens.ToArray());

        // IN's first message is "e, s": both become the pre-message.
        Assert.Equal([NoiseToken.E, NoiseToken.S], HandshakePattern.Parse("INfallback").InitiatorPreMessage.ToArray());
    }

    [Theory]
    [InlineData("IKfallback")] // first message e, es, s, ss: not pre-message shaped
    [InlineData("NKfallback")] // first message e, es
    [InlineData("KKfallback")] // already has an initiator pre-message
    [InlineData("KNfallback")]
    [InlineData("Nfallback")] // one-way
    [InlineData("Xfallback")]
    [InlineData("XXpsk0+fallback")] // psk0 makes the first message psk, e
    [InlineData("XXfallback+fallback")]
    public void FallbackNeedsAnInteractivePatternWhoseFirstMessageIsPreMessageShaped(string pattern)
    {
        Fails(NoiseErrorKind.InvalidProtocolName, () => NoiseProtocol.Parse($"Noise_{pattern}_25519_ChaChaPoly_SHA256"));
    }

    [Theory]
    [InlineData("Noise_XX_25519_ChaChaPoly")]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA256_extra")]
    [InlineData("Noise_XX__ChaChaPoly_SHA256")]
    [InlineData("")]
    [InlineData("Noise")]
    [InlineData("noise_XX_25519_ChaChaPoly_SHA256")]
    [InlineData("Nois_XX_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_ZZ_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_xx_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXPSK0_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXpsk0+psk0_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXpsk9_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXpsk4_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_NNpsk3_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXpsk00_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXpsk01_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXpsk_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXpsk-1_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXpsk99999999999_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXpsk0+_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XX+psk0_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXhfs_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XXé_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA256\u00A0")]
    [InlineData("Noise_ＸＸ_25519_ChaChaPoly_SHA256")]
    public void InvalidNamesAreInvalidProtocolName(string name)
    {
        Fails(NoiseErrorKind.InvalidProtocolName, () => NoiseProtocol.Parse(name));
        Fails(NoiseErrorKind.InvalidProtocolName, () => new NoiseBuilder(name).Dispose());
    }

    [Fact]
    public void NameLongerThan255CharactersIsInvalidProtocolName()
    {
        var modifiers = string.Join("+", Enumerable.Range(0, 60).Select(i => $"psk{i}"));
        Fails(NoiseErrorKind.InvalidProtocolName, () => NoiseProtocol.Parse($"Noise_XX{modifiers}_25519_ChaChaPoly_SHA256"));
    }

    [Theory]
    [InlineData("Noise_XX_448_ChaChaPoly_SHA256")]
    [InlineData("Noise_XX_448_AESGCM_BLAKE2b")]
    [InlineData("Noise_XX_25519_AES256_SHA256")]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA384")]
    [InlineData("Noise_XX_25519_chachapoly_SHA256")]
    [InlineData("NoisePSK_XX_25519_ChaChaPoly_SHA256")]
    [InlineData("NoisePSK_NN_25519_AESGCM_BLAKE2s")]
    public void UnknownPrimitivesAndTheObsoletePskSchemeAreUnsupportedPrimitive(string name)
    {
        Fails(NoiseErrorKind.UnsupportedPrimitive, () => NoiseProtocol.Parse(name));
    }

    [Fact]
    public void NullNameThrowsArgumentNullException()
    {
        Assert.Throws<ArgumentNullException>(() => NoiseProtocol.Parse(null!));
        Assert.Throws<ArgumentNullException>(() => HandshakePattern.Parse(null!));
    }

    [Fact]
    public void ProtocolAndPatternToStringAreTheirNames()
    {
        var protocol = NoiseProtocol.Parse("Noise_XXpsk0+psk3_25519_ChaChaPoly_SHA256");
        Assert.Equal("Noise_XXpsk0+psk3_25519_ChaChaPoly_SHA256", protocol.ToString());
        Assert.Equal("XXpsk0+psk3", protocol.Pattern.ToString());
    }
}
