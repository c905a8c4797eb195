#!/usr/bin/env bash
# The commands that trained the weights shipped in srlib/weights (on a 2-core CPU, all but the last: vdsr-gpu).
# vdsr and srcnn-x3 trained under bf16 autocast on a CPU with AMX (the fast presets' default there; float32
# elsewhere, slower per step); the other fast-preset runs say --no-amp: they trained in float32, before srlib had bf16.
# Run from the repository root with SRLIB_DATA pointing at the data sets.
set -euo pipefail
python -m srlib train vdsr --preset vdsr-fast --data 291 --scale 2 3 4 --minutes 70 --out runs/vdsr --quiet
# ... then 75 minutes more from that checkpoint: a second cosine cycle starting at 2e-4 (1e-4 at the resume).
python -m srlib train vdsr --resume --minutes 75 --lr 2e-4 --out runs/vdsr --quiet
# srcnn-x3: the paper's wider SRCNN (n1 = 128, n2 = 64; section 4.3) on 291 with the 8 flips/rotations.
python -m srlib train srcnn --preset srcnn-fast --data 291 --scale 3 --model-set n1=128 n2=64 --augment --minutes 85 --out runs/srcnn-x3 --quiet
python -m srlib train srcnn --preset srcnn-fast --data T91 --scale 2 --minutes 10 --no-amp --out runs/srcnn-x2 --quiet
python -m srlib train srcnn --preset srcnn-fast --data T91 --scale 4 --minutes 10 --no-amp --out runs/srcnn-x4 --quiet
# Table 2 of the residual-learning notebook: four depth-10 VDSRs, same recipe and iterations, only the scales differ.
python -m srlib train vdsr --preset vdsr-fast --data 291 --scale 2 --iterations 1200 --val-every 400 --model-set depth=10 --no-amp --out runs/vdsr10-x2 --quiet
python -m srlib train vdsr --preset vdsr-fast --data 291 --scale 3 --iterations 1200 --val-every 400 --model-set depth=10 --no-amp --out runs/vdsr10-x3 --quiet
python -m srlib train vdsr --preset vdsr-fast --data 291 --scale 4 --iterations 1200 --val-every 400 --model-set depth=10 --no-amp --out runs/vdsr10-x4 --quiet
python -m srlib train vdsr --preset vdsr-fast --data 291 --scale 2 3 4 --iterations 1200 --val-every 400 --model-set depth=10 --no-amp --out runs/vdsr10-x234 --quiet
# The small SRResNet x4 (8 blocks, 32 channels, MSE) that the perceptual-loss notebook fine-tunes.
python -m srlib train srresnet --data T91 --scale 4 --model-set blocks=8 width=32 --batch-size 8 --lr 3e-4 --val-every 250 --minutes 6 --out runs/srresnet-x4-small --quiet
# Generator depth (notebook 04): the same SRResNet recipe and 5,000 steps of 16 crops of 96x96, B = 4, 8 and 16
# residual blocks; the rate decays along a cosine to zero, so each run ends settled (at a constant rate Set5 swung by
# 0.3 dB). Float32 on a 2-core AMD EPYC. (Before: 3,000 steps of 8 crops, too few to separate the depths.)
for b in 4 16 8; do
  python -m srlib train srresnet --data T91 --scale 4 --model-set blocks=$b width=32 --batch-size 16 --lr 3e-4 --schedule cosine --val-every 500 --iterations 5000 --no-amp --out runs/srresnet-b$b-long --quiet
done
# SRGAN at CPU scale (notebook 04): srresnet-x4-small fine-tuned for 1,500 steps of 8 crops of 48x48 with random VGG19
# features (calibrated to SRGAN's pixel MSE): VGG22 with an adversarial weight of 4e-3 (4 times the paper's), 4e-4, and
# 0 (the discriminator trains alongside, the generator does not listen), and VGG54 and the MSE with 4e-3. Float32.
# These runs trained before srlib computed SRGAN's MSE on [-1, 1] as the paper (srlib.losses.srgan_mse): their weights
# were 1e-3 and 1e-4 against the MSE of [0, 1] images, the same as 4e-3 and 4e-4 now (up to Adam's epsilon).
gan() { name=$1; shift; python -m srlib train srgan --generator srresnet-x4-small --model-set scale=4 blocks=8 width=32 \
  --vgg-weights none --data T91 --scale 4 --patch-size 48 --batch-size 8 --iterations 1500 --val-every 100 "$@" \
  --out runs/$name --quiet; }
gan srgan-x4-vgg22-gan --content-layer relu2_2 --adversarial-weight 4e-3
gan srgan-x4-vgg22 --content-layer relu2_2 --adversarial-weight 0
gan srgan-x4-vgg22-gan-4e-4 --content-layer relu2_2 --adversarial-weight 4e-4
gan srgan-x4-mse-gan --content-layer mse --adversarial-weight 4e-3  # SRGAN-MSE: the pixel MSE plus the adversarial loss
gan srgan-x4-vgg54-gan --content-layer relu5_4 --adversarial-weight 4e-3
# Resize-convolution (notebook 04): the small SRResNet with nearest-neighbour + convolution stages in place of the
# sub-pixel ones, trained like srresnet-x4-small for its 3,132 steps, then SRGAN-MSE and SRGAN-VGG22 from it at the
# paper's adversarial weight 1e-3 against SRGAN's [-1, 1] pixel MSE. Float32 on a 2-core Intel Xeon.
python -m srlib train srresnet --data T91 --scale 4 --model-set blocks=8 width=32 upsample=nearest --batch-size 8 --lr 3e-4 --val-every 250 --iterations 3132 --out runs/srresnet-x4-small-nearest --quiet
near() { name=$1; shift; python -m srlib train srgan --generator srresnet-x4-small-nearest \
  --model-set scale=4 blocks=8 width=32 upsample=nearest --vgg-weights none --data T91 --scale 4 --patch-size 48 \
  --batch-size 8 --iterations 1500 --val-every 100 "$@" --out runs/$name --quiet; }
near srgan-x4-mse-gan-nearest --content-layer mse
near srgan-x4-vgg22-gan-nearest --content-layer relu2_2
# The same SRGAN-MSE with the paper's sub-pixel stages, from srresnet-x4-small, at the paper's weight (against the
# [-1, 1] MSE): the two differ only in the upsampling. Float32 on a 2-core Intel Xeon.
gan srgan-x4-mse-gan-1e-3 --content-layer mse
# Bilinear resize-convolution (notebook 04): the same small SRResNet with bilinear enlargements, trained like the
# nearest one; SRGAN-MSE from it at the paper's weight; and with a moving average of the generator's weights (decay
# 0.995 per step, evaluated and shipped in place of the generator; the generator trains step for step as without it):
# SRGAN-MSE and SRGAN-VGG22 from it, and SRGAN-MSE with the sub-pixel stages. Float32 on a 2-core AMD EPYC.
python -m srlib train srresnet --data T91 --scale 4 --model-set blocks=8 width=32 upsample=bilinear --batch-size 8 --lr 3e-4 --val-every 250 --iterations 3132 --out runs/srresnet-x4-small-bilinear --quiet
bil() { name=$1; shift; python -m srlib train srgan --generator srresnet-x4-small-bilinear \
  --model-set scale=4 blocks=8 width=32 upsample=bilinear --vgg-weights none --data T91 --scale 4 --patch-size 48 \
  --batch-size 8 --iterations 1500 --val-every 100 "$@" --out runs/$name --quiet; }
bil srgan-x4-mse-gan-bilinear --content-layer mse
bil srgan-x4-mse-gan-bilinear-ema --content-layer mse --ema 0.995
bil srgan-x4-vgg22-gan-bilinear-ema --content-layer relu2_2 --ema 0.995
gan srgan-x4-mse-gan-1e-3-ema --content-layer mse --ema 0.995
# The paper's second phase (section 3.2: 1e5 steps at 1e-4, then 1e5 at 1e-5), in miniature: the averaged bilinear
# SRGAN-MSE run above, continued for 1,500 steps at 1e-5 (generator and discriminator) in a copy of its folder.
cp -r runs/srgan-x4-mse-gan-bilinear-ema runs/srgan-x4-mse-gan-bilinear-ema-2
python -m srlib train srgan --resume --iterations 3000 --lr 1e-5 --out runs/srgan-x4-mse-gan-bilinear-ema-2 --quiet
# The averaged bilinear SRGAN-MSE at half the paper's adversarial weight (5e-4 against the [-1, 1] MSE). AMD EPYC.
bil srgan-x4-mse-gan-bilinear-ema-5e-4 --content-layer mse --ema 0.995 --adversarial-weight 5e-4
# The averaged bilinear SRGAN-MSE with an R1 penalty on the discriminator (Mescheder et al. 2018; not the paper's) at
# gamma = 1, 0.3 and 0.1, and the same steps without the adversarial loss (weight 0: the discriminator only watches),
# what the extra MSE steps do alone. Float32 on a 2-core AMD EPYC.
for g in 1 0.3 0.1; do
  bil srgan-x4-mse-gan-bilinear-ema-r1$([ $g = 1 ] || echo -$g) --content-layer mse --ema 0.995 --r1 $g
done
bil srgan-x4-mse-bilinear-ema --content-layer mse --ema 0.995 --adversarial-weight 0
# The two penalised runs that came out clean (gamma = 1 and 0.3), trained again with seed 1 (the batches' order and the
# discriminator's first weights; the generator starts from the same weights).
for g in 1 0.3; do
  bil srgan-x4-mse-gan-bilinear-ema-r1$([ $g = 1 ] || echo -$g)-seed1 --content-layer mse --ema 0.995 --r1 $g --seed 1
done
# The depth sweep of the receptive-field notebook: the same recipe and iterations, only the depth differs
# (vdsr-fast on 291, x2/x3/x4 mixed, 10,000 steps of 16 patches, seed 0; bf16 on a 2-core AMD EPYC with AVX512-BF16).
for d in 20 10 5 3; do
  python -m srlib train vdsr --preset vdsr-fast --data 291 --scale 2 3 4 --iterations 10000 --val-every 1000 --model-set depth=$d --out runs/vdsr-d$d --quiet
done
# Table 1 of the residual-learning notebook: the paper's 10-layer, 64-channel network at x2 on 291, VDSR's recipe (SGD,
# the rate /10 every 20 epochs, adjustable clipping at the preset's theta 1e-4), residual and not, at three rates;
# batches of 16 and an epoch of 20 iterations: 80 epochs are 1,600 iterations, Set5 every 10 epochs. Float32.
for lr in 0.1 0.01 0.001; do
  python -m srlib train vdsr --data 291 --scale 2 --model-set depth=10 --lr $lr --batch-size 16 --iterations 1600 --val-every 200 --out runs/vdsr10-t1-res-$lr --quiet
  python -m srlib train vdsr --data 291 --scale 2 --model-set depth=10 residual=false --lr $lr --batch-size 16 --iterations 1600 --val-every 200 --out runs/vdsr10-t1-nonres-$lr --quiet
done
# Clipping (the residual-learning notebook): the Table 1 residual run at rate 0.1 (vdsr10-t1-res-0.1, adjustable
# clipping at theta 1e-4) against a fixed range of the same bound at the start (theta / 0.1 on each gradient element)
# and the global norm 0.4; the same recipe, 1,600 iterations, float32. (Without clipping the loss overflows at once.)
python -m srlib train vdsr --data 291 --scale 2 --model-set depth=10 --lr 0.1 --batch-size 16 --iterations 1600 --val-every 200 --clip value --clip-value 1e-3 --out runs/vdsr10-clip-fixed --quiet
python -m srlib train vdsr --data 291 --scale 2 --model-set depth=10 --lr 0.1 --batch-size 16 --iterations 1600 --val-every 200 --clip norm --clip-value 0.4 --out runs/vdsr10-clip-norm --quiet
# Table 2 of the residual-learning notebook: single-scale D = 10 networks that see their scale as often as vdsr-d10
# (10,000 iterations over three scales) sees each of its own: a third of its iterations, the same recipe.
for s in 2 3 4; do
  python -m srlib train vdsr --preset vdsr-fast --data 291 --scale $s --iterations 3334 --val-every 1000 --model-set depth=10 --out runs/vdsr-d10-x$s --quiet
done
# vdsr-gpu: the VDSR paper's recipe (the `vdsr` preset) fitted to 6 minutes on one NVIDIA H100 (shared by three
# runs of the theta sweep in benchmarks/results/gpu/); not part of the CPU set above.
python -m srlib train vdsr --data 291 --minutes 6 --val-every 4000 --clip-value 1e-4 --out runs/vdsr-gpu --quiet
# The SRCNN study of notebook 01 (section 5): one change at a time, the same 50,000 steps of srcnn-fast at x3, seed 0
# (but the last), trained in bf16 on a 2-core AMD EPYC with AVX512-BF16 (about 4 to 14 ms a step).
study() { name=$1; shift; python -m srlib train srcnn --preset srcnn-fast --scale 3 --iterations 50000 --val-every 2500 "$@" --out runs/$name --quiet; }
study srcnn-x3-915 --data T91 --model-set f2=1
study srcnn-x3-955 --data T91 --model-set f2=5
study srcnn-x3-935 --data T91 --model-set f2=3
study srcnn-x3-915-n32 --data T91 --model-set f2=1 n1=32 n2=16
study srcnn-x3-915-n128 --data T91 --model-set f2=1 n1=128 n2=64
study srcnn-x3-915-291 --data 291 --model-set f2=1
study srcnn-x3-9115 --data T91 --model-set f2=1 f2b=1 n2b=16
study srcnn-x3-915-rgb --data T91 --model-set f2=1 colour=rgb
study srcnn-x3-915-ycbcr --data T91 --model-set f2=1 colour=ycbcr
study srcnn-x3-915-gauss --data T91 --model-set f2=1 init=gaussian
study srcnn-x3-915-seed1 --data T91 --model-set f2=1 --seed 1
# each shipped with: python scripts/ship_weights.py NAME runs/NAME --command "..." --data T91 --cpu-minutes 0 \
#   --device "2-core CPU (AMD EPYC), bf16 (AVX512-BF16)"   (the checkpoint's own training time is recorded)
