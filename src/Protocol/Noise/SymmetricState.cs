using System.Security.Cryptography;
using System.Text;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Noise;

/// <summary>The chaining key, the handshake hash and the cipher state of a handshake (spec §5.2).</summary>
internal sealed class SymmetricState : IDisposable
{
    private readonly NoiseProtocol _protocol;
    private readonly byte[] _chainingKey;
    private readonly byte[] _hash;

    public SymmetricState(NoiseProtocol protocol)
    {
        _protocol = protocol;
        var hashLength = protocol.Hash.HashLength;
        _chainingKey = new byte[hashLength];
        _hash = new byte[hashLength];
        Cipher = new CipherState(protocol.Cipher);

        // InitializeSymmetric: a short name is used as h directly, padded with zeros; a long one is hashed.
        Span<byte> name = stackalloc byte[Encoding.ASCII.GetByteCount(protocol.Name)];
        Encoding.ASCII.GetBytes(protocol.Name, name);
        if (name.Length <= hashLength)
        {
            name.CopyTo(_hash);
        }
        else
        {
            protocol.Hash.Hash(name, default, default, _hash);
        }

        _hash.CopyTo(_chainingKey, 0);
    }

    public CipherState Cipher { get; }

    public ReadOnlySpan<byte> HandshakeHash => _hash;

    private NoiseHash Hash => _protocol.Hash;

    public void MixKey(ReadOnlySpan<byte> inputKeyMaterial)
    {
        Span<byte> tempKey = stackalloc byte[Hash.HashLength];
        try
        {
            Hash.Hkdf(_chainingKey, inputKeyMaterial, _chainingKey, tempKey, default);
            Cipher.InitializeKey(tempKey[..NoiseConstants.CipherKeyLength]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(tempKey);
        }
    }

    public void MixHash(ReadOnlySpan<byte> data) => Hash.Hash(_hash, data, default, _hash);

    public void MixKeyAndHash(ReadOnlySpan<byte> inputKeyMaterial)
    {
        Span<byte> tempHash = stackalloc byte[Hash.HashLength];
        Span<byte> tempKey = stackalloc byte[Hash.HashLength];
        try
        {
            Hash.Hkdf(_chainingKey, inputKeyMaterial, _chainingKey, tempHash, tempKey);
            MixHash(tempHash);
            Cipher.InitializeKey(tempKey[..NoiseConstants.CipherKeyLength]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(tempHash);
            CryptographicOperations.ZeroMemory(tempKey);
        }
    }

    /// <summary>Encrypts (or copies, before a key) <paramref name="plaintext"/>, mixes the result into h, returns its length.</summary>
    public int EncryptAndHash(ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
    {
        var written = Cipher.EncryptWithAd(_hash, plaintext, ciphertext);
        MixHash(ciphertext[..written]);
        return written;
    }

    /// <summary>Decrypts (or copies, before a key) <paramref name="ciphertext"/>, mixes the ciphertext into h, returns the plaintext length.</summary>
    public int DecryptAndHash(ReadOnlySpan<byte> ciphertext, Span<byte> plaintext)
    {
        // h must absorb the ciphertext, which in-place decryption destroys: hash it first, commit after.
        Span<byte> next = stackalloc byte[Hash.HashLength];
        Hash.Hash(_hash, ciphertext, default, next);
        var written = Cipher.DecryptWithAd(_hash, ciphertext, plaintext);
        next.CopyTo(_hash);
        return written;
    }

    /// <summary>Split(): the two transport cipher states, initiator-to-responder first.</summary>
    public (CipherState InitiatorToResponder, CipherState ResponderToInitiator) Split()
    {
        Span<byte> key1 = stackalloc byte[Hash.HashLength];
        Span<byte> key2 = stackalloc byte[Hash.HashLength];
        var first = new CipherState(_protocol.Cipher);
        var second = new CipherState(_protocol.Cipher);
        var done = false;
        try
        {
            Hash.Hkdf(_chainingKey, default, key1, key2, default);
            first.InitializeKey(key1[..NoiseConstants.CipherKeyLength]);
            second.InitializeKey(key2[..NoiseConstants.CipherKeyLength]);
            done = true;
            return (first, second);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key1);
            CryptographicOperations.ZeroMemory(key2);
            if (!done)
            {
                first.Dispose();
                second.Dispose();
            }
        }
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_chainingKey);
        Cipher.Dispose();
    }
}
