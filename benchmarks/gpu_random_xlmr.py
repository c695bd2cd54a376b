"An XLM-R-base-shaped encoder with random weights (the hub is unreachable on the device): same compute as xlm-roberta-base."
import sys, torch
from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel
tok_dir, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
cfg = XLMRobertaConfig(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                       max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
model = XLMRobertaModel(cfg, add_pooling_layer=False)
model.save_pretrained(out)  # a plain transformers directory, like the hub's xlm-roberta-base
AutoTokenizer.from_pretrained(tok_dir).save_pretrained(out)
print(out, sum(p.numel() for p in model.parameters())/1e6, 'M parameters')
