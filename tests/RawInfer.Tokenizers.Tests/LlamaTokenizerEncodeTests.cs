using RawInfer.Tests;

namespace RawInfer.Tokenizers.Tests;

public class LlamaTokenizerEncodeTests
{
    [Fact]
    public void Llama2_vocabulary_gives_the_well_known_ids()
    {
        Assert.Equal([15043, 3186], VocabFile.Llama2.Encode("Hello world", addBos: false, addEos: false));
        Assert.Equal([9038, 2501, 263, 931], VocabFile.Llama2.Encode("Once upon a time", addBos: false, addEos: false));
    }

    [Fact]
    public void Bos_and_eos_are_added_only_when_asked()
    {
        var tok = VocabFile.Llama2;
        Assert.Equal([1, 9038, 2501, 263, 931, 2], tok.Encode("Once upon a time", addBos: true, addEos: true));
        Assert.Equal([1], tok.Encode(string.Empty, addBos: true, addEos: false));
        Assert.Empty(tok.Encode(string.Empty, addBos: false, addEos: false));
    }

    [Fact]
    public void Llama2_vocabulary_matches_hugging_face_on_llama_cpp_test_vectors()
    {
        var (inputs, expected) = LlamaCppVectors.Read("ggml-vocab-llama-spm.gguf");
        Assert.Equal(46, inputs.Count); // guards the parser: the file holds 46 cases
        var mismatches = new List<string>();
        for (int i = 0; i < inputs.Count; i++)
        {
            var actual = VocabFile.Llama2.Encode(inputs[i], addBos: false, addEos: false);
            if (!actual.AsSpan().SequenceEqual(expected[i]))
            {
                mismatches.Add($"#{i} \"{inputs[i]}\": expected [{string.Join(' ', expected[i])}] got [{string.Join(' ', actual)}]");
            }
        }

        Assert.True(mismatches.Count == 0, string.Join('\n', mismatches));
    }

    [Fact]
    public void Tok512_single_character_maps_to_space_piece_and_its_own_piece()
    {
        // " é" is no piece, so nothing merges: the dummy-prefix space and the character stay apart.
        Assert.False(VocabFile.Tok512Has(" é"));
        Assert.Equal([VocabFile.Tok512Id(" "), VocabFile.Tok512Id("é")], VocabFile.Tok512.Encode("é", false, false));
    }

    [Fact]
    public void Tok512_merges_by_score_the_highest_pair_first()
    {
        // " the": pairs of " ","t","h","e" are " t"(score 0) and "he"(-1) ("th" is no piece): " t" merges first;
        // then "he" beats " th"; finally " t"+"he" = " the".
        Assert.False(VocabFile.Tok512Has("th"));
        Assert.True(VocabFile.Tok512.Score(VocabFile.Tok512Id(" t")) > VocabFile.Tok512.Score(VocabFile.Tok512Id("he")));
        Assert.True(VocabFile.Tok512.Score(VocabFile.Tok512Id("he")) > VocabFile.Tok512.Score(VocabFile.Tok512Id(" th")));
        Assert.Equal([VocabFile.Tok512Id(" the")], VocabFile.Tok512.Encode("the", false, false));
    }

    [Fact]
    public void Tok512_missing_characters_fall_back_to_byte_tokens_from_id_3()
    {
        // 世 = E4 B8 96, 界 = E7 95 8C, 🙂 = F0 9F 99 82; none is a tok512 piece.
        int[] expected =
        [
            VocabFile.Tok512Id(" "), 3 + 0xE4, 3 + 0xB8, 3 + 0x96, 3 + 0xE7, 3 + 0x95, 3 + 0x8C,
            VocabFile.Tok512Id(" "), 3 + 0xF0, 3 + 0x9F, 3 + 0x99, 3 + 0x82,
        ];
        Assert.Equal(expected, VocabFile.Tok512.Encode("世界 🙂", false, false));
    }

    [Fact]
    public void Literal_special_piece_text_is_not_turned_into_a_control_or_byte_token()
    {
        var ids = VocabFile.Tok512.Encode("<0x41><unk>", false, false);
        Assert.DoesNotContain(0, ids);
        Assert.DoesNotContain(3 + 0x41, ids);
        Assert.Equal(" <0x41><unk>", VocabFile.Decode(VocabFile.Tok512, ids));
    }

    [Fact]
    public void Sentencepiece_space_symbol_gives_the_same_ids_as_the_plain_space_file()
    {
        // Rebuild tok512 with spaces spelled U+2581, as a GGUF vocabulary stores them.
        var source = VocabFile.Tok512;
        var pieces = new byte[source.VocabSize][];
        var scores = new float[source.VocabSize];
        for (int i = 0; i < pieces.Length; i++)
        {
            pieces[i] = System.Text.Encoding.UTF8.GetBytes(
                System.Text.Encoding.UTF8.GetString(source.Piece(i)).Replace(' ', '\u2581'));
            scores[i] = source.Score(i);
        }

        var spm = new LlamaTokenizer(pieces, scores, LlamaTokenizerOptions.Llama2c with { SpaceSymbol = '\u2581' });
        foreach (var text in new[] { "Once upon a time", "  two  spaces ", "héllo 世界 🙂" })
        {
            var ids = spm.Encode(text, true, false);
            Assert.Equal(source.Encode(text, true, false), ids);
            Assert.Equal(text, VocabFile.Decode(spm, ids));
        }
    }
}
